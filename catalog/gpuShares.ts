// GPU memory shares. A GPU server that reserves a share of each of its GPUs' memory when it starts (vLLM:
// --gpu-memory-utilization, `# @gpu-share` in its script) does not start when that share is not free: vLLM's worker
// compares the free memory at start with total x share and stops with "Free memory on device ... is less than
// desired GPU memory utilization". So the servers that can run on one GPU at the same time must fit in it together.
//
// Who holds a share, and for how long:
//   - a guest that stays (not a template) holds its share from its server's step on, for good: the servers that run
//     permanently on one GPU must sum to at most 1 (checkPermanentShares: a catalog error otherwise);
//   - a template holds its share only while it is built: its conversion stops it (and disables the server's unit,
//     components/lxc.ts templateScript), which frees the share.
// GPU lanes order what would not fit (gpuLanes): on a GPU whose servers do not all fit together, the templates
// start their servers one after another when their shares together exceed the GPU (each after the previous one's
// conversion), and the permanent servers start theirs after the templates' conversions when a running template
// would not fit beside them. Like the clone lanes (catalog/graph.ts) these are scheduling, not dependencies: they
// pull no guest into a selection and change no readiness wave; the plan lists them.
//
// Servers that take GPU memory without reserving a share up front (Ollama loads a model when one is asked for and
// fits it into what is free; llama.cpp loads its model when it starts) are not counted: the catalog does not know
// their models' sizes (README: GPU containers).
import { type GuestIndex, edgesOf, findCycle, indexGuests, topologicalOrder } from "./graph";
import type { GuestSpec } from "./model";
import type { Problem } from "./problems";

/** Shares add up in hundredths (0.1 + 0.85 + 0.05 is 1, not 1.0000000000000002). */
const EPSILON = 1e-9;

export interface GpuServer {
    guest: number;
    node: string;
    /** GPU indexes the server's guest passes through (the share is reserved on each: the safe side for TP 1). */
    gpus: number[];
    /** Share of each GPU's memory the server reserves at start. */
    share: number;
    /** Whether the share was stated (else it is the script's default). */
    stated: boolean;
    /** A template: it holds the share only until it is converted. */
    template: boolean;
    /** The feature that runs the server, e.g. vllm, and its position among the guest's features. */
    feature: string;
    featureIndex: number;
}

/** Every GPU server of the given guests, in the order given. */
export const gpuServers = (guests: Iterable<GuestSpec>): GpuServer[] =>
    [...guests].flatMap((g) => {
        if (g.kind !== "lxc" || g.gpus.length === 0) return [];
        return g.features.flatMap((f, featureIndex) => {
            const gs = f.script.gpuShare;
            if (!gs) return [];
            const given = f.env[gs.param];
            return [{ guest: g.id, node: g.node, gpus: [...g.gpus], share: given !== undefined ? Number(given) : gs.default, stated: given !== undefined, template: g.template, feature: f.name, featureIndex }];
        });
    });

/** One GPU of one node and the servers on it. */
export interface GpuShares {
    node: string;
    gpu: number;
    permanent: GpuServer[];
    templates: GpuServer[];
}

const sum = (servers: readonly GpuServer[]): number => Math.round(servers.reduce((s, x) => s + x.share, 0) * 1e6) / 1e6;

/** The servers of each GPU, GPUs by node and index, servers in the order given. */
export const sharesByGpu = (servers: readonly GpuServer[]): GpuShares[] => {
    const byKey = new Map<string, GpuShares>();
    for (const s of servers) {
        for (const gpu of s.gpus) {
            const key = `${s.node}/${gpu}`;
            const g = byKey.get(key) ?? byKey.set(key, { node: s.node, gpu, permanent: [], templates: [] }).get(key)!;
            (s.template ? g.templates : g.permanent).push(s);
        }
    }
    return [...byKey.values()].sort((a, b) => a.node.localeCompare(b.node) || a.gpu - b.gpu);
};

const listed = (servers: readonly GpuServer[]): string => servers.map((s) => `${s.guest} ${s.share}${s.stated ? "" : " (the default)"}`).join(" + ");

/** Where a problem about a server is shown: the guest's share parameter (or its feature when the default applies). */
export type LocateServer = (s: GpuServer, message: string) => Problem;

/** The permanent servers of each GPU must fit in it together: one problem per GPU that they overfill. */
export const checkPermanentShares = (servers: readonly GpuServer[], locate: LocateServer): Problem[] =>
    sharesByGpu(servers).flatMap((g) => {
        const total = sum(g.permanent);
        if (total <= 1 + EPSILON) return [];
        const last = g.permanent[g.permanent.length - 1];
        return [locate(last,
            `the GPU servers that run permanently on ${g.node} GPU ${g.gpu} reserve ${listed(g.permanent)} = ${total} of its memory, more than all of it: ` +
            `the last to start would fail (vLLM does not start without its share free). Lower their shares (${last.feature} gpuMemoryUtilization) to sum to at most 1, ` +
            `or give one of guests ${g.permanent.map((s) => s.guest).join(", ")} another GPU (templates do not count: they stop when converted)`)];
    });

/** A GPU's lane: the order in which its servers start where their shares would not fit together. */
export interface GpuLane {
    node: string;
    gpu: number;
    /** Templates in lane order; `chained`: each starts its server only after the previous one's conversion. */
    templates: number[];
    chained: boolean;
    /** Permanent servers; `afterTemplates`: each starts its server only after every template's conversion. */
    permanent: number[];
    afterTemplates: boolean;
}

export interface GpuLanePlan {
    lanes: GpuLane[];
    /** Guest -> the templates whose conversion its GPU server waits for (beyond what its clone sources already imply). */
    waits: Map<number, number[]>;
    /** A template that cannot start its server: it depends on a permanent server that would never leave it room. */
    conflicts: { template: GpuServer; permanent: GpuServer; node: string; gpu: number; total: number }[];
}

/**
 * The GPU lanes of the given servers. `order`: the guests in a topological order of the catalog's graph (lanes run
 * in it, so a lane never contradicts a dependency); `dependsOn(a, b)`: whether guest a (transitively) waits for b's
 * readiness; `clonedFrom(a, b)`: whether b is among a's clone sources (a clone is made from a converted template, so
 * it never overlaps it: no wait needed).
 */
export const gpuLanes = (
    servers: readonly GpuServer[],
    order: readonly number[],
    dependsOn: (a: number, b: number) => boolean,
    clonedFrom: (a: number, b: number) => boolean,
): GpuLanePlan => {
    const rank = new Map(order.map((id, i) => [id, i]));
    const byOrder = (a: GpuServer, b: GpuServer) => (rank.get(a.guest) ?? Infinity) - (rank.get(b.guest) ?? Infinity) || a.guest - b.guest;
    const waits = new Map<number, Set<number>>();
    const wait = (guest: number, template: number) => {
        if (guest !== template && !clonedFrom(guest, template)) (waits.get(guest) ?? waits.set(guest, new Set()).get(guest)!).add(template);
    };
    const lanes: GpuLane[] = [];
    const conflicts: GpuLanePlan["conflicts"] = [];
    for (const g of sharesByGpu(servers)) {
        const templates = [...new Map(g.templates.map((s) => [s.guest, s])).values()].sort(byOrder);
        const permanent = g.permanent;
        const fitTogether = sum(templates) + sum(permanent) <= 1 + EPSILON;
        if (fitTogether || templates.length === 0) continue;
        // Templates one at a time when they do not fit together; permanents after them when a running template would not fit.
        const chained = sum(templates) > 1 + EPSILON;
        const busiestTemplates = chained ? Math.max(...templates.map((t) => t.share)) : sum(templates);
        const afterTemplates = permanent.length > 0 && sum(permanent) + busiestTemplates > 1 + EPSILON;
        if (chained) templates.slice(1).forEach((t, i) => wait(t.guest, templates[i].guest));
        if (afterTemplates) {
            for (const p of permanent) {
                const blocking = templates.filter((t) => dependsOn(t.guest, p.guest));
                for (const t of blocking) conflicts.push({ template: t, permanent: p, node: g.node, gpu: g.gpu, total: sum([t, ...permanent]) });
                if (blocking.length > 0) continue;
                // The chain's last template implies the others; unchained, each one is waited for.
                for (const t of chained ? templates.slice(-1) : templates) wait(p.guest, t.guest);
            }
        }
        lanes.push({ node: g.node, gpu: g.gpu, templates: templates.map((t) => t.guest), chained, permanent: permanent.map((p) => p.guest), afterTemplates });
    }
    return { lanes, waits: new Map([...waits].map(([k, v]) => [k, [...v].sort((a, b) => a - b)])), conflicts };
};

/**
 * `order` again, with every guest after its prerequisites (`prerequisites`: its graph dependencies and the templates
 * its GPU server waits for) and otherwise as it was: a component looks up the guests it waits for, so they are built
 * first. The graph with the lanes is acyclic (the catalog refuses a cycle through a lane).
 */
export const orderWithLanes = (order: readonly number[], prerequisites: (id: number) => readonly number[]): number[] => {
    const wanted = new Set(order);
    const placed = new Set<number>();
    const out: number[] = [];
    const place = (id: number) => {
        if (placed.has(id)) return;
        placed.add(id);
        for (const p of prerequisites(id)) if (wanted.has(p)) place(p);
        out.push(id);
    };
    order.forEach(place);
    return out;
};

/** Whether guest `from` waits (transitively, over every graph edge) for guest `to`. */
const reaches = (graph: GuestIndex): ((from: number, to: number) => boolean) => {
    const memo = new Map<number, Set<number>>();
    const below = (id: number): Set<number> => {
        const known = memo.get(id);
        if (known) return known;
        const out = new Set<number>();
        memo.set(id, out); // the catalog reports cycles; this only stops one from looping
        for (const e of graph.has(id) ? edgesOf(graph.get(id)!) : []) {
            out.add(e.to);
            below(e.to).forEach((x) => out.add(x));
        }
        return out;
    };
    return (from, to) => below(from).has(to);
};

/** Whether `source` is among `id`'s clone sources (its clone source, that one's, and so on). */
const clonedFrom = (graph: GuestIndex) => (id: number, source: number): boolean => {
    for (let g = graph.get(id)?.cloneFrom, seen = 0; g !== undefined && seen < graph.size; g = graph.get(g)?.cloneFrom, seen++) if (g === source) return true;
    return false;
};

/** The GPU lanes of the given guests (a stack's selection), in the catalog's topological order. */
export const lanesOf = (guests: ReadonlyMap<number, GuestSpec>, graph: GuestIndex, ids: readonly number[]): GpuLanePlan =>
    gpuLanes(gpuServers(ids.map((id) => guests.get(id)!)), topologicalOrder(graph, ids), reaches(graph), clonedFrom(graph));

/** `graph` with each GPU server's waits for templates (`waits`, its lanes) as edges of the waiting guest. */
const withLaneEdges = (graph: GuestIndex, waits: GpuLanePlan["waits"]): GuestIndex =>
    indexGuests([...graph.values()].map((g) => ({ ...g, consumes: [...(g.consumes ?? []), ...(waits.get(g.id) ?? [])] })));

/**
 * The catalog's graph with the GPU lanes of all its guests as edges: every wait between guests that the catalog's
 * data implies, for a check of what else might close a loop with them (catalog/routeWaits.ts).
 */
export const withGpuLanes = (guests: ReadonlyMap<number, GuestSpec>, graph: GuestIndex): GuestIndex => {
    const { waits } = lanesOf(guests, graph, [...graph.keys()].filter((id) => guests.has(id)));
    return waits.size === 0 ? graph : withLaneEdges(graph, waits);
};

/**
 * The catalog's GPU problems: permanent servers that overfill a GPU, a template that depends on a permanent server it
 * cannot run beside, and a cycle the lanes would close with the dependencies (each located at a server's share).
 */
export const checkGpuShares = (guests: ReadonlyMap<number, GuestSpec>, graph: GuestIndex, locate: LocateServer): Problem[] => {
    const servers = gpuServers(guests.values());
    if (servers.length === 0) return [];
    const problems = checkPermanentShares(servers, locate);
    if (problems.length > 0) return problems;
    const plan = lanesOf(guests, graph, [...graph.keys()].filter((id) => guests.has(id)));
    for (const c of plan.conflicts) {
        problems.push(locate(c.template,
            `template ${c.template.guest} runs its GPU server on ${c.node} GPU ${c.gpu} (${c.template.share}) and depends on guest ${c.permanent.guest}, whose server holds ` +
            `${c.permanent.share} of that GPU for good: together ${c.total}, more than the GPU, so ${c.template.guest}'s server could never start. ` +
            "Lower a share, or give one of them another GPU"));
    }
    if (problems.length > 0) return problems;
    const cycle = findCycle(withLaneEdges(graph, plan.waits));
    if (cycle) {
        const s = servers.find((x) => x.guest === cycle[0]) ?? servers.find((x) => cycle.includes(x.guest))!;
        problems.push(locate(s, `the GPU lanes (servers that wait for templates to free a GPU) and the dependencies form a cycle ${cycle.join(" -> ")}: lower a share or move a guest to another GPU`));
    }
    return problems;
};
