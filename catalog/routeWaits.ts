// The waits the routes add between guests' steps (RouteWait, catalog/routes.ts) go both ways between the gateway and
// Traefik: Traefik's routes wait for the gateway's application, and the gateway's health check waits for Traefik and
// every route's target. Neither is a guest-level dependency (the guest graph stays what the catalog declares, and
// they pull no guest into a selection), so a catalog edge could close a loop with them that no cycle check of the
// graph sees, and `pulumi up` would wait forever. This finds each such loop and says which edge to drop. Pure.
import { type Edge, type GuestIndex, edgesOf } from "./graph";
import type { GuestSpec } from "./model";
import { GATEWAY_APPLICATION, type RouteProblem, type RouteWait } from "./routes";

/** The shortest chain of catalog edges from `from` to `to` (each guest's steps wait for the next one), if any. */
const chain = (graph: GuestIndex, from: number, to: number): Edge[] | undefined => {
    const via = new Map<number, Edge>();
    const queue = [from];
    while (queue.length > 0) {
        const id = queue.shift()!;
        for (const e of graph.has(id) ? edgesOf(graph.get(id)!) : []) {
            if (e.to === from || via.has(e.to)) continue;
            via.set(e.to, e);
            if (e.to === to) {
                const edges: Edge[] = [];
                for (let at = to; at !== from; at = via.get(at)!.from) edges.unshift(via.get(at)!);
                return edges;
            }
            queue.push(e.to);
        }
    }
    return undefined;
};

const REASON: Record<Edge["reason"], string> = { dependsOn: "dependsOn", cloneFrom: "clones", consumes: "has a step waiting for", copy: "is provisioned after" };
const spell = (edges: Edge[]): string => edges.map((e) => `${e.from} ${REASON[e.reason]} ${e.to}`).join(", ");

/** Where to point at: the field of the waiting guest that starts the chain (its dependsOn entry, cloneFrom, features). */
const at = (g: GuestSpec, edges: Edge[], fallback: (string | number)[]): (string | number)[] => {
    const first = edges[0];
    if (first.reason === "dependsOn" && g.dependsOn.includes(first.to)) return ["dependsOn", g.dependsOn.indexOf(first.to)];
    return first.reason === "cloneFrom" ? ["cloneFrom"] : first.reason === "consumes" ? ["features"] : fallback;
};

export const routeWaitProblems = (waits: readonly RouteWait[], guests: ReadonlyMap<number, GuestSpec>, graph: GuestIndex): RouteProblem[] => {
    const problems: RouteProblem[] = [];
    for (const w of waits) {
        for (const other of w.guests) {
            if (w.on === "ready") {
                // The health check waits for `other`'s readiness: a loop if `other` waits for the gateway.
                const loop = chain(graph, other, w.guest);
                const x = guests.get(other)!;
                if (loop) {
                    problems.push({
                        guest: other,
                        at: at(x, loop, ["dependsOn"]),
                        kind: "other",
                        message: `${x.id} waits for the gateway ${w.guest} (${spell(loop)}), but the gateway's health check checks every route through ${x.id} and so waits for it: ` +
                            `they would wait for each other; remove that dependency (a route's guests need nothing from the gateway to start), or the gateway's health check`,
                    });
                }
            } else {
                // Traefik's step waits for the gateway's application: a loop if the gateway waits for Traefik.
                const loop = chain(graph, other, w.guest);
                const gateway = guests.get(other)!;
                const step = w.step === "health" ? "health check" : w.step.name;
                if (loop) {
                    problems.push({
                        guest: other,
                        at: at(gateway, loop, ["application"]),
                        kind: "other",
                        message: `the gateway waits for ${w.guest} (${spell(loop)}), but ${step} on ${w.guest} waits for the gateway's ${GATEWAY_APPLICATION}, which forwards the ACME http-01 challenges ` +
                            `of Traefik's certificates: they would wait for each other; remove that dependency (the gateway's health check waits for Traefik instead)`,
                    });
                }
            }
        }
    }
    return problems;
};

/** Hands each wait to the step it orders, where the components read it. */
export const applyRouteWaits = (waits: readonly RouteWait[], guests: ReadonlyMap<number, GuestSpec>): void => {
    for (const w of waits) {
        if (w.step === "health") guests.get(w.guest)!.healthRouteWait = w;
        else w.step.routeWait = w;
    }
};
