// The request path of every route, checked hop by hop before anything runs. A route is a guest's traefikService; a
// request for https://<name>.<searchDomain> goes
//   LAN -> gateway :443 (nginx_gateway, a certificate from the internal CA)
//       -> Traefik :443 (websecure; the gateway verifies Traefik's certificate against the internal root)
//       -> the service (https verified against the internal root, or http)
// and the certificates on the way come from the internal CA by ACME: every step that declares `# @ca` talks to the
// CA at its CA_URL, and with `http-01` the CA connects back on port 80 where the certificate's names resolve: the
// guest's own address, except for Traefik, whose names are the routes' hosts: they resolve to the routes' entry (the
// gateway, which forwards the challenges to Traefik's port 80; without a gateway, Traefik itself).
// For each hop the check asks: does the receiving guest declare a listener there (a script's `# @listens`), does
// its firewall admit the sender, and does the sender's firewall let the connection out? Every "no" is a located
// problem. Without a gateway, Traefik itself is the entry from the LAN. The check also says which steps the routes
// order across guests (RouteWait, catalog/routeWaits.ts). Pure: no Pulumi, no network.
import { type Connection, type FirewallSpec, firewallVerdict, ruleFor } from "./firewallCheck";
import type { FirewallRuleSpec } from "./schema";
import { type GuestSpec, type ResolvedStep, ipOf } from "./model";

/** The feature that runs Traefik and the application that runs the gateway (their scripts declare the listeners). */
export const TRAEFIK_FEATURE = "traefik";
export const GATEWAY_APPLICATION = "nginx_gateway";

export interface Listener {
    port: number;
    scheme: "http" | "https";
    /** The step whose script declares it. */
    step: string;
    description: string;
}

/** One connection of a request or of a certificate's issuance. */
export interface Hop {
    from: string;
    to: string;
    /** The receiving guest (undefined for the LAN). */
    guest?: number;
    port: number;
    scheme: "http" | "https";
}

export interface Route {
    name: string;
    host: string;
    target: number;
    /** The request's path, from the LAN to the service. */
    hops: Hop[];
}

export interface RouteProblem {
    guest: number;
    at: (string | number)[];
    message: string;
    /** firewall: `fix` is the rule that admits the hop; loop, listener: the route cannot work as declared. */
    kind: "firewall" | "loop" | "listener" | "other";
    fix?: FirewallRuleSpec;
}

/**
 * A wait the routes put between two guests' steps, beyond what the catalog declares: Traefik's step that loads the
 * routes (and so orders their certificates) waits for the gateway's application, which forwards the ACME http-01
 * challenges to it; the gateway's health check, which checks every route through the whole path, waits for Traefik
 * and each route's target to be ready. Applied between the guests a stack manages.
 */
export interface RouteWait {
    /** The waiting guest, and its step: a resolved feature or application, or its health check. */
    guest: number;
    step: ResolvedStep | "health";
    /** What it waits for: these guests' application step, or their readiness. */
    on: "application" | "ready";
    guests: number[];
    why: string;
}

export const routeHost = (name: string, searchDomain: string): string => `${name}.${searchDomain}`;

const steps = (g: GuestSpec): ResolvedStep[] => [...g.features, ...(g.application ? [g.application] : [])];

/** `[host]:port`, `:port` or `port` -> the port. */
const portOf = (value: string | undefined): number | undefined => {
    const m = /(?:^|:)(\d{1,5})$/.exec(value ?? "");
    return m ? Number(m[1]) : undefined;
};

/** The step of a Traefik guest that loads the routes (the one given the generated dynamic configuration). */
export const routesStepOf = (traefik: GuestSpec): ResolvedStep | undefined => steps(traefik).find((s) => s.script.params.has("TRAEFIK_DYNAMIC_YAML"));

/** What a guest's steps listen on, from their scripts' `# @listens` lines and the steps' parameters. */
export const listenersOf = (g: GuestSpec): Listener[] =>
    steps(g).flatMap((s) =>
        s.script.listens.flatMap((l) => {
            const port = typeof l.port === "number" ? l.port : portOf(s.env[l.port] ?? s.script.params.get(l.port)?.default);
            return port === undefined ? [] : [{ port, scheme: l.scheme, step: s.name, description: l.description }];
        }),
    );

/** https://host:port -> host and port (443 by default). */
const parseUrl = (url: string | undefined): { scheme: string; host: string; port: number } | undefined => {
    const m = /^(https?):\/\/([^/:]+)(?::(\d+))?(?:\/.*)?$/.exec(url ?? "");
    return m ? { scheme: m[1], host: m[2], port: m[3] ? Number(m[3]) : m[1] === "https" ? 443 : 80 } : undefined;
};

/** The subnet of a guest's static address ("the LAN" of the route check). */
export const subnetOf = (g: GuestSpec): string | undefined => {
    if (g.network.ip === "dhcp") return undefined;
    const [ip, prefix] = g.network.ip.split("/");
    const size = 2 ** (32 - Number(prefix));
    const n = ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);
    const base = Math.floor(n / size) * size;
    return `${[24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join(".")}/${prefix}`;
};

const label = (g: GuestSpec): string => `${g.id} ${g.name}`;

export const checkRoutes = (
    guests: ReadonlyMap<number, GuestSpec>,
    searchDomain: string,
    /** Guests whose steps did not all resolve (a missing script): what they listen on is unknown, so not checked. */
    incomplete: ReadonlySet<number> = new Set(),
): { routes: Route[]; problems: RouteProblem[]; waits: RouteWait[] } => {
    const all = [...guests.values()].sort((a, b) => a.id - b.id);
    const byIp = new Map(all.filter((g) => ipOf(g)).map((g) => [ipOf(g)!, g]));
    const traefiks = all.filter((g) => g.features.some((f) => f.name === TRAEFIK_FEATURE));
    const gateways = all.filter((g) => g.application?.name === GATEWAY_APPLICATION);
    const problems: RouteProblem[] = [];
    const waits: RouteWait[] = [];
    const seen = new Set<string>();
    const problem = (guest: number, at: (string | number)[], message: string, kind: RouteProblem["kind"] = "other", fix?: FirewallRuleSpec) => {
        const key = `${guest} ${message}`;
        if (!seen.has(key)) (seen.add(key), problems.push({ guest, at, message, kind, ...(fix ? { fix } : {}) }));
    };
    const ruleOf = (c: Connection, what: string): FirewallRuleSpec => ({
        type: c.direction,
        action: "ACCEPT",
        ...(c.direction === "in" ? { source: c.peer } : { dest: c.peer }),
        proto: "tcp",
        dport: String(c.port),
        comment: what,
        enabled: true,
    });

    /**
     * Checks one connection on both ends; `what` says whose connection it is, for the messages. A connection that
     * serves two purposes (the CA validating the gateway's challenges and Traefik's, through the gateway) is checked
     * once: one missing rule, one problem.
     */
    const checked = new Set<string>();
    const connect = (what: string, from: GuestSpec | { lan: string }, to: GuestSpec, port: number): void => {
        const key = `${"id" in from ? from.id : from.lan} ${to.id}:${port}`;
        if (checked.has(key)) return;
        checked.add(key);
        const toIp = ipOf(to)!;
        if ("id" in from) {
            const out: Connection = { direction: "out", peer: toIp, self: ipOf(from), proto: "tcp", port };
            const v = firewallVerdict(from.firewall as FirewallSpec, out);
            if (!v.allowed) problem(from.id, ["firewall"], `${what}: the firewall does not let guest ${from.id} reach ${label(to)} at ${toIp}:${port} (${v.by}); add ${ruleFor(out, `"${what}"`)}`, "firewall", ruleOf(out, what));
        }
        const peer = "id" in from ? ipOf(from)! : from.lan;
        const inbound: Connection = { direction: "in", peer, self: toIp, proto: "tcp", port };
        const v = firewallVerdict(to.firewall as FirewallSpec, inbound);
        const who = "id" in from ? `guest ${label(from)} (${peer})` : `the LAN (${peer})`;
        if (!v.allowed) problem(to.id, ["firewall"], `${what}: the firewall does not admit ${who} on tcp ${port} (${v.by}); add ${ruleFor(inbound, `"${what}"`)}`, "firewall", ruleOf(inbound, what));
    };

    /** The listener `g` must declare on `port` with `scheme`, or a problem at `at` (unknown when a script is missing). */
    const listens = (what: string, g: GuestSpec, port: number, scheme: "http" | "https", at: (string | number)[]): void => {
        if (incomplete.has(g.id)) return;
        const ls = listenersOf(g);
        const l = ls.find((x) => x.port === port);
        const declared = ls.map((x) => `${x.port} ${x.scheme} (${x.step})`).join(", ") || "nothing";
        if (!l) problem(g.id, at, `${what}: guest ${g.id} runs nothing that listens on tcp ${port} (its steps declare: ${declared}); add the step that runs the service, or fix the port`, "listener");
        else if (l.scheme !== scheme) problem(g.id, at, `${what}: guest ${g.id} listens on ${port} with ${l.scheme} (${l.step}), not ${scheme}`, "listener");
    };

    const needsIp = (g: GuestSpec, role: string): boolean => {
        if (ipOf(g)) return true;
        problem(g.id, ["network", "ip"], `${role} needs a static address: the route check (and the other guests) connect to it`);
        return false;
    };

    // The entry: the gateway from the LAN to Traefik's websecure (and its port 80 to Traefik's web, for ACME).
    const entries: { g: GuestSpec; traefik?: GuestSpec }[] = [];
    for (const g of gateways) {
        if (!needsIp(g, "the gateway")) continue;
        listens("the gateway", g, 443, "https", ["application"]);
        const up = parseUrl(g.application!.env.UPSTREAM_URL);
        const traefik = up ? traefiks.find((t) => ipOf(t) === up.host) : undefined;
        const websecure = traefik ? listenersOf(traefik).find((l) => l.scheme === "https") : undefined;
        if (!up || up.scheme !== "https" || !traefik || (websecure && up.port !== websecure.port)) {
            const want = traefiks.filter((t) => ipOf(t)).map((t) => `https://${ipOf(t)}:${listenersOf(t).find((l) => l.scheme === "https")?.port ?? 443}`);
            problem(g.id, ["application", "params", "upstreamUrl"],
                `the gateway must proxy to Traefik's websecure entry point over https (${want.length > 0 ? want.join(" or ") : "no guest runs the traefik feature"}), not ${g.application!.env.UPSTREAM_URL ?? "nothing"}`);
        } else {
            connect("the gateway proxies to Traefik", g, traefik, up.port);
            listens("the gateway proxies to Traefik", traefik, up.port, "https", ["features"]);
            connect("the gateway forwards ACME http-01 challenges to Traefik", g, traefik, 80);
            listens("the gateway forwards ACME http-01 challenges to Traefik", traefik, 80, "http", ["features"]);
            const loads = routesStepOf(traefik);
            if (loads) {
                waits.push({ guest: traefik.id, step: loads, on: "application", guests: [g.id],
                    why: `${loads.name} loads the routes, whose certificates Traefik then orders; the gateway ${g.id} forwards their ACME http-01 challenges once its ${GATEWAY_APPLICATION} has run` });
            }
        }
        entries.push({ g, traefik });
        connect("LAN clients reach the gateway", { lan: subnetOf(g)! }, g, 443);
    }
    if (gateways.length === 0) for (const t of traefiks) if (ipOf(t)) entries.push({ g: t, traefik: t });
    if (all.some((g) => g.traefikService)) for (const t of traefiks) needsIp(t, "Traefik, which serves the routes,");

    // Certificates: every step that uses the internal CA reaches it; with http-01 the CA connects back on port 80 where
    // the names resolve: the guest itself, or for Traefik the routes' entry (a gateway forwards to Traefik's port 80,
    // checked above; without one the challenges reach Traefik's web entry point directly).
    for (const g of all) {
        for (const s of steps(g)) {
            const ca = s.script.ca ? parseUrl(s.env.CA_URL) : undefined;
            const caGuest = ca ? byIp.get(ca.host) : undefined;
            if (!ca || !caGuest || !ipOf(g)) continue;
            connect(`${s.name} on ${g.id} talks to the CA`, g, caGuest, ca.port);
            if (s.script.ca !== "http-01") continue;
            if (!traefiks.includes(g)) {
                connect(`the CA validates ${s.name}'s ACME http-01 challenge on ${g.id}`, caGuest, g, 80);
                continue;
            }
            const entry = entries.find((e) => e.traefik === g)?.g; // none: the gateway's upstream is wrong (reported)
            const what = `the CA validates ${s.name}'s ACME http-01 challenges (every route's host)`;
            if (entry === g) {
                connect(`${what} on ${g.id}`, caGuest, g, 80);
                listens(`${what} on ${g.id}`, g, 80, "http", ["features"]);
            } else if (entry) connect(`${what} on the gateway ${entry.id}, which forwards them to ${g.id}`, caGuest, entry, 80);
        }
    }

    const routes: Route[] = [];
    const names = new Map<string, number>();
    for (const t of all.filter((g) => g.traefikService)) {
        const svc = t.traefikService!;
        const host = routeHost(svc.name, searchDomain);
        const what = `route ${svc.name}`;
        if (names.has(svc.name)) {
            problem(t.id, ["traefikService", "name"], `${what}: guest ${names.get(svc.name)} already has a route named ${svc.name}`);
            continue;
        }
        names.set(svc.name, t.id);
        if (!needsIp(t, `${what}: the route's target`)) continue;
        if (gateways.includes(t) || traefiks.includes(t)) {
            problem(t.id, ["traefikService"], `${what}: guest ${t.id} ${gateways.includes(t) ? "is the gateway, which proxies to Traefik" : "runs Traefik"}: a route to it loops; remove traefikService`, "loop");
            continue;
        }
        if (traefiks.length === 0) {
            problem(t.id, ["traefikService"], `${what}: no guest runs the ${TRAEFIK_FEATURE} feature, so nothing serves this route`);
            continue;
        }
        listens(what, t, svc.port, svc.scheme, ["traefikService", "port"]);
        for (const x of traefiks.filter((g) => ipOf(g))) connect(`${what}: Traefik reaches the service`, x, t, svc.port);
        const entry = entries[0];
        const x = entry?.traefik ?? traefiks[0];
        const lan = subnetOf(entry?.g ?? x);
        routes.push({
            name: svc.name,
            host,
            target: t.id,
            hops: [
                ...(entry && entry.g !== x ? [{ from: `LAN ${lan}`, to: `${label(entry.g)} ${ipOf(entry.g)}`, guest: entry.g.id, port: 443, scheme: "https" as const }] : []),
                { from: entry && entry.g !== x ? label(entry.g) : `LAN ${lan}`, to: `${label(x)} ${ipOf(x)}`, guest: x.id, port: 443, scheme: "https" },
                { from: label(x), to: `${label(t)} ${ipOf(t)}`, guest: t.id, port: svc.port, scheme: svc.scheme },
            ],
        });
    }
    if (gateways.length === 0) for (const t of traefiks) if (ipOf(t) && routes.length > 0) connect("LAN clients reach Traefik", { lan: subnetOf(t)! }, t, 443);
    if (names.size === 0) for (const g of gateways) problem(g.id, ["application"], "the gateway serves the routes (every guest's traefikService) and the catalog has none");
    // The gateway's health check goes through the whole path of every route: it runs once they are all ready.
    for (const { g, traefik } of entries) {
        if (g === traefik || !traefik || !g.healthCheck) continue;
        const through = [...new Set([traefik.id, ...routes.map((r) => r.target)])];
        waits.push({ guest: g.id, step: "health", on: "ready", guests: through, why: "the gateway's health check goes through Traefik to every route's target" });
    }
    return { routes, problems, waits };
};

/** One line per route: `ca.internal  LAN 10.0.0.0/24 -> 101 Nginx-Phoenix 10.0.0.153:443 https -> ...`. */
export const formatRoute = (r: Route): string =>
    [r.hops[0].from, ...r.hops.map((h) => `${h.to}:${h.port} ${h.scheme}`)].join(" -> ");
