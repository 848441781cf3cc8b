// The waits the routes add between guests' steps (RouteWait, catalog/routes.ts) go both ways between the gateway and
// Traefik: Traefik's routes wait for the gateway's application, and the gateway's health check waits for Traefik and
// every route's target. Neither is a guest-level dependency (the guest graph stays what the catalog declares, and
// they pull no guest into a selection), so a catalog edge could close a loop with them that no cycle check of the
// graph sees, and `pulumi up` would wait forever. GPU lanes (a GPU server waiting for a template's conversion) count as
// edges too (the graph passed in has them). This finds each such loop and says which edge to drop. Pure.
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

/**
 * The edge of a loop to point at: the last declared dependency on the way to the gateway (the one to drop), else the
 * chain's last edge; located at that guest's field (its dependsOn entry, cloneFrom, features).
 */
const blame = (guests: ReadonlyMap<number, GuestSpec>, edges: Edge[]): { guest: number; at: (string | number)[] } => {
    const e = [...edges].reverse().find((x) => x.reason === "dependsOn") ?? edges[edges.length - 1];
    const g = guests.get(e.from)!;
    const at = e.reason === "dependsOn" && g.dependsOn.includes(e.to) ? ["dependsOn", g.dependsOn.indexOf(e.to)]
        : e.reason === "cloneFrom" ? ["cloneFrom"] : e.reason === "consumes" ? ["features"] : ["dependsOn"];
    return { guest: e.from, at };
};

const and = (ids: number[]): string => (ids.length === 1 ? String(ids[0]) : `${ids.slice(0, -1).join(", ")} and ${ids[ids.length - 1]}`);

export const routeWaitProblems = (waits: readonly RouteWait[], guests: ReadonlyMap<number, GuestSpec>, graph: GuestIndex): RouteProblem[] => {
    // Loops that run through one edge are one problem, at that edge: the guests they pass through are listed in it.
    const loops = new Map<string, { where: ReturnType<typeof blame>; wait: RouteWait; chains: Edge[][] }>();
    for (const w of waits) {
        for (const other of w.guests) {
            // The gateway's health check waits for `other` (a route's guest): a loop if `other` waits for the gateway.
            // Traefik's step waits for the gateway (`other`)'s application: a loop if the gateway waits for Traefik.
            const loop = chain(graph, other, w.guest);
            if (!loop) continue;
            const where = blame(guests, loop);
            const key = `${w.guest} ${w.on} ${where.guest} ${where.at.join(".")}`;
            const known = loops.get(key) ?? loops.set(key, { where, wait: w, chains: [] }).get(key)!;
            known.chains.push(loop);
        }
    }
    return [...loops.values()].map(({ where, wait: w, chains }) => {
        const why = chains.map((c, i) => (i === 0 ? spell(c) : `${c[0].from} likewise`)).join("; ");
        if (w.on === "ready") {
            const through = chains.map((c) => c[0].from);
            const them = through.length === 1 ? "it" : "them";
            return {
                guest: where.guest,
                at: where.at,
                kind: "other" as const,
                message: `${through.length === 1 ? "the route's guest" : "the routes' guests"} ${and(through)} ${through.length === 1 ? "waits" : "wait"} for the gateway ${w.guest} (${why}), ` +
                    `but the gateway's health check checks every route through ${them} and so waits for ${them}: they would wait for each other; ` +
                    `remove this dependency (a route's guests need nothing from the gateway to start), or the gateway's health check`,
            };
        }
        const step = w.step === "health" ? "health check" : w.step.name;
        return {
            guest: where.guest,
            at: where.at,
            kind: "other" as const,
            message: `the gateway ${chains[0][0].from} waits for ${w.guest} (${why}), but ${step} on ${w.guest} waits for the gateway's ${GATEWAY_APPLICATION}, which forwards the ACME ` +
                `http-01 challenges of Traefik's certificates: they would wait for each other; remove this dependency (the gateway's health check waits for Traefik instead)`,
        };
    });
};

/** Hands each wait to the step it orders, where the components read it. */
export const applyRouteWaits = (waits: readonly RouteWait[], guests: ReadonlyMap<number, GuestSpec>): void => {
    for (const w of waits) {
        if (w.step === "health") guests.get(w.guest)!.healthRouteWait = w;
        else w.step.routeWait = w;
    }
};
