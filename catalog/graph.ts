// The guest-level graph: selection closure, cycles, readiness waves and clone lanes. Pure TypeScript with no Pulumi
// import, so it is tested on its own and shared by the program, the offline plan and the importer.

export type Kind = "lxc" | "vm";
export type EdgeReason = "dependsOn" | "cloneFrom" | "consumes" | "copy";

export interface GraphGuest {
    id: number;
    kind: Kind;
    dependsOn: readonly number[];
    cloneFrom?: number;
    /** Guests whose outputs or readiness one of this guest's steps consumes (feature caFrom / after). */
    consumes?: readonly number[];
    /** A copy of a template provisioned only once the previous copy is done (they would clash while running). */
    provisionAfter?: number;
    /** For a template's copy on another node: the template (managing a template manages all its copies). */
    copyOf?: number;
}

export interface Edge {
    from: number; // the dependent
    to: number; // the dependency
    reason: EdgeReason;
}

export type GuestIndex = ReadonlyMap<number, GraphGuest>;

export const indexGuests = (guests: Iterable<GraphGuest>): Map<number, GraphGuest> => new Map([...guests].map((g) => [g.id, g]));

export const edgesOf = (g: GraphGuest): Edge[] => {
    const edges: Edge[] = [];
    const seen = new Set<number>();
    const add = (to: number, reason: EdgeReason) => {
        if (seen.has(to)) return;
        seen.add(to);
        edges.push({ from: g.id, to, reason });
    };
    if (g.cloneFrom !== undefined) add(g.cloneFrom, "cloneFrom");
    g.dependsOn.forEach((d) => add(d, "dependsOn"));
    (g.consumes ?? []).forEach((d) => add(d, "consumes"));
    if (g.provisionAfter !== undefined) add(g.provisionAfter, "copy");
    return edges;
};

const dependenciesOf = (g: GraphGuest): number[] => edgesOf(g).map((e) => e.to);

/** The first cycle found, as a closed walk such as [103, 101, 103]; undefined when the graph is acyclic. */
export const findCycle = (index: GuestIndex): number[] | undefined => {
    const state = new Map<number, "visiting" | "done">();
    const stack: number[] = [];
    const visit = (id: number): number[] | undefined => {
        const s = state.get(id);
        if (s === "done") return undefined;
        if (s === "visiting") return [...stack.slice(stack.indexOf(id)), id];
        state.set(id, "visiting");
        stack.push(id);
        const g = index.get(id);
        for (const dep of g ? dependenciesOf(g) : []) {
            if (!index.has(dep)) continue; // unknown IDs are reported by the catalog, not here
            const cycle = visit(dep);
            if (cycle) return cycle;
        }
        stack.pop();
        state.set(id, "done");
        return undefined;
    };
    for (const id of [...index.keys()].sort((a, b) => a - b)) {
        const cycle = visit(id);
        if (cycle) return cycle;
    }
    return undefined;
};

export class SelectionError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "SelectionError";
    }
}

export interface PulledIn {
    id: number;
    by: number;
    reason: EdgeReason;
}

export interface Selection {
    requested: number[];
    /** Every guest the stack manages, in dependency (topological) order. */
    selected: number[];
    /** Guests not requested but needed, with the first guest that needed them and why. */
    pulledIn: PulledIn[];
}

/** Closure of the requested guests over every dependency edge. */
export const resolveSelection = (index: GuestIndex, request: readonly number[] | "all"): Selection => {
    const known = [...index.keys()].sort((a, b) => a - b);
    const requested = request === "all" ? known : [...new Set(request)];
    const unknown = requested.filter((id) => !index.has(id));
    if (unknown.length > 0) {
        throw new SelectionError(
            `phoenix:guests names ${unknown.length === 1 ? "a guest" : "guests"} not in the catalog: ${unknown.join(", ")}. ` +
                `Known guests: ${known.join(", ")}.`,
        );
    }
    const chosen = new Set(requested);
    const pulledIn: PulledIn[] = [];
    const queue = [...requested];
    const copies = new Map<number, number[]>();
    for (const g of index.values()) if (g.copyOf !== undefined) copies.set(g.copyOf, [...(copies.get(g.copyOf) ?? []), g.id]);
    while (queue.length > 0) {
        const g = index.get(queue.shift()!)!;
        const copyEdges = (copies.get(g.id) ?? []).map((c): Edge => ({ from: g.id, to: c, reason: "copy" }));
        for (const e of [...edgesOf(g), ...copyEdges]) {
            if (chosen.has(e.to) || !index.has(e.to)) continue;
            chosen.add(e.to);
            pulledIn.push({ id: e.to, by: g.id, reason: e.reason });
            queue.push(e.to);
        }
    }
    return { requested, selected: topologicalOrder(index, [...chosen]), pulledIn };
};

/** Dependency level of each guest: 0 for guests with no dependencies, else 1 + the highest level among them. */
const levels = (index: GuestIndex, ids: readonly number[]): Map<number, number> => {
    const wanted = new Set(ids);
    const level = new Map<number, number>();
    const levelOf = (id: number, path: number[]): number => {
        const known = level.get(id);
        if (known !== undefined) return known;
        if (path.includes(id)) throw new SelectionError(`dependency cycle ${[...path.slice(path.indexOf(id)), id].join(" -> ")}`);
        const deps = dependenciesOf(index.get(id)!).filter((d) => wanted.has(d));
        const l = deps.length === 0 ? 0 : 1 + Math.max(...deps.map((d) => levelOf(d, [...path, id])));
        level.set(id, l);
        return l;
    };
    ids.forEach((id) => levelOf(id, []));
    return level;
};

/** Guests in one wave have all their dependencies in earlier waves, so they proceed in parallel. */
export const readinessWaves = (index: GuestIndex, ids: readonly number[]): number[][] => {
    const level = levels(index, ids);
    const waves: number[][] = [];
    for (const [id, l] of level) (waves[l] ??= []).push(id);
    return waves.map((w) => w.sort((a, b) => a - b));
};

/** Stable topological order: by level, then by ID. */
export const topologicalOrder = (index: GuestIndex, ids: readonly number[]): number[] => readinessWaves(index, ids).flat();

/**
 * Clones of one source run one after another: parallel clones of one source hit Proxmox lock timeouts
 * (bpg/terraform-provider-proxmox#995). Each lane lists a source's clones in topological order, so chaining them never
 * contradicts a dependency. Everything else stays parallel.
 */
export const cloneLanes = (index: GuestIndex, ids: readonly number[]): Map<number, number[]> => {
    const lanes = new Map<number, number[]>();
    for (const id of topologicalOrder(index, ids)) {
        const source = index.get(id)!.cloneFrom;
        if (source !== undefined) lanes.set(source, [...(lanes.get(source) ?? []), id]);
    }
    return lanes;
};

/** The clone that must finish before this one starts (the previous one in its lane), if any. */
export const lanePredecessor = (lanes: ReadonlyMap<number, number[]>, source: number | undefined, id: number): number | undefined => {
    if (source === undefined) return undefined;
    const lane = lanes.get(source) ?? [];
    const i = lane.indexOf(id);
    return i > 0 ? lane[i - 1] : undefined;
};

/** Transitive reduction of a DAG's edges, for readable graphs (mermaid) and for comparing with the seed document. */
export const transitiveReduction = (edges: readonly { from: number; to: number }[]): { from: number; to: number }[] => {
    const adj = new Map<number, Set<number>>();
    for (const e of edges) (adj.get(e.from) ?? adj.set(e.from, new Set()).get(e.from)!).add(e.to);
    const reachableWithoutDirect = (from: number, to: number): boolean => {
        const stack = [...(adj.get(from) ?? [])].filter((n) => n !== to);
        const seen = new Set(stack);
        while (stack.length > 0) {
            const n = stack.pop()!;
            if (n === to) return true;
            for (const m of adj.get(n) ?? []) if (!seen.has(m)) (seen.add(m), stack.push(m));
        }
        return false;
    };
    const unique = [...new Map(edges.map((e) => [`${e.from}->${e.to}`, { from: e.from, to: e.to }])).values()];
    return unique.filter((e) => !reachableWithoutDirect(e.from, e.to));
};
