// The simulated `pulumi up`, computed exactly from the recorded dependency graph: every resource starts as soon as
// everything it awaits has finished (unlimited parallelism, as the engine), except that a clone holds its source's
// lock for its whole duration (latency model limits.concurrent_clones_per_source). All figures are model seconds.
import type { Registration } from "./engine";

export interface SimNode {
    name: string;
    seconds: number;
    /** Names of the nodes it waits for. */
    awaits: string[];
    /** Lock held for the whole duration (the clone source), if any. */
    lock?: string;
}

export interface Schedule {
    start: Map<string, number>;
    end: Map<string, number>;
    /** When the last resource finishes. */
    makespan: number;
    /** One resource after another: what the original phoenix-cli does. */
    serial: number;
    /** Longest chain of dependencies weighted by duration: no schedule can beat it. */
    criticalPath: { seconds: number; steps: string[] };
    /** Seconds clones spent waiting for their source's lock after their dependencies were done. */
    lockWait: number;
}

/** Binary min-heap on [time, tie-break]. */
class Queue {
    private readonly items: [number, number][] = [];
    get size(): number {
        return this.items.length;
    }
    push(item: [number, number]): void {
        const a = this.items;
        a.push(item);
        for (let i = a.length - 1; i > 0; ) {
            const p = (i - 1) >> 1;
            if (!less(a[i], a[p])) break;
            [a[i], a[p]] = [a[p], a[i]];
            i = p;
        }
    }
    pop(): [number, number] {
        const a = this.items;
        const top = a[0];
        const last = a.pop()!;
        if (a.length > 0) {
            a[0] = last;
            for (let i = 0; ; ) {
                const l = 2 * i + 1;
                const r = l + 1;
                let m = i;
                if (l < a.length && less(a[l], a[m])) m = l;
                if (r < a.length && less(a[r], a[m])) m = r;
                if (m === i) break;
                [a[i], a[m]] = [a[m], a[i]];
                i = m;
            }
        }
        return top;
    }
}
const less = (a: [number, number], b: [number, number]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

/**
 * Event order: a node is taken when everything it awaits is done, earliest first (ties in the given order), so a lock
 * goes to the clone that asked first. Awaited names missing from `nodes` are ignored (they never run).
 */
export const simulate = (nodes: readonly SimNode[], lockCapacity = 1): Schedule => {
    const index = new Map(nodes.map((n, i) => [n.name, i]));
    const deps = nodes.map((n) => [...new Set(n.awaits)].filter((a) => index.has(a) && a !== n.name).map((a) => index.get(a)!));
    const dependents = nodes.map(() => [] as number[]);
    deps.forEach((ds, i) => ds.forEach((d) => dependents[d].push(i)));
    const pending = deps.map((ds) => ds.length);
    const readyAt = nodes.map(() => 0);
    const start = nodes.map(() => 0);
    const end = nodes.map(() => 0);
    // Longest dependency chain ending at each node, and the dependency it came through.
    const chain = nodes.map(() => 0);
    const longestDep = nodes.map(() => 0);
    const chainFrom = nodes.map(() => -1);
    const locks = new Map<string, number[]>();
    let lockWait = 0;
    let done = 0;

    const queue = new Queue();
    pending.forEach((p, i) => p === 0 && queue.push([0, i]));
    while (queue.size > 0) {
        const [t, i] = queue.pop();
        const node = nodes[i];
        let s = t;
        if (node.lock !== undefined) {
            const free = locks.get(node.lock) ?? Array(Math.max(1, lockCapacity)).fill(0);
            const slot = free.indexOf(Math.min(...free));
            s = Math.max(t, free[slot]);
            free[slot] = s + node.seconds;
            locks.set(node.lock, free);
            lockWait += s - t;
        }
        start[i] = s;
        end[i] = s + node.seconds;
        chain[i] = longestDep[i] + node.seconds;
        done++;
        for (const d of dependents[i]) {
            readyAt[d] = Math.max(readyAt[d], end[i]);
            if (chainFrom[d] < 0 || chain[i] > longestDep[d]) [longestDep[d], chainFrom[d]] = [chain[i], i];
            if (--pending[d] === 0) queue.push([readyAt[d], d]);
        }
    }
    if (done < nodes.length) {
        const stuck = nodes.filter((_, i) => pending[i] > 0).map((n) => n.name);
        throw new Error(`dependency cycle among ${stuck.slice(0, 5).join(", ")}${stuck.length > 5 ? ", ..." : ""}`);
    }

    let last = -1;
    chain.forEach((c, i) => (last < 0 || c > chain[last] ? (last = i) : undefined));
    const steps: string[] = [];
    for (let i = last; i >= 0; i = chainFrom[i]) steps.unshift(nodes[i].name);
    return {
        start: new Map(nodes.map((n, i) => [n.name, start[i]])),
        end: new Map(nodes.map((n, i) => [n.name, end[i]])),
        makespan: end.reduce((m, e) => Math.max(m, e), 0),
        serial: nodes.reduce((sum, n) => sum + n.seconds, 0),
        criticalPath: { seconds: last < 0 ? 0 : chain[last], steps },
        lockWait,
    };
};

/** Everything that never runs when `failed` fails: the nodes that (transitively) await it. */
export const blockedBy = (nodes: readonly SimNode[], failed: string): Set<string> => {
    const dependents = new Map<string, string[]>();
    for (const n of nodes) for (const a of n.awaits) (dependents.get(a) ?? dependents.set(a, []).get(a)!).push(n.name);
    const blocked = new Set<string>();
    const stack = [...(dependents.get(failed) ?? [])];
    while (stack.length > 0) {
        const n = stack.pop()!;
        if (blocked.has(n)) continue;
        blocked.add(n);
        stack.push(...(dependents.get(n) ?? []));
    }
    return blocked;
};

export interface Measured {
    /** Wall milliseconds per model second of the run. */
    scale: number;
    /** From the first registration to the last answer, in model seconds. */
    makespan: number;
    /** Per resource, when the SDK sent it and when it finished, in model seconds from the start. */
    start: Map<string, number>;
    end: Map<string, number>;
    /**
     * The longest a resource was sent after the last thing it awaits had finished. A few model seconds is the SDK's
     * own time per step; much more would mean it awaits something the recorded dependencies do not show.
     */
    maxLag: { name: string; seconds: number };
}

/** The timed run's own clock, converted back to model seconds; `nodes` give what each resource awaits. */
export const measure = (regs: readonly Registration[], scale: number, nodes: readonly SimNode[]): Measured => {
    const timed = regs.filter((r) => r.startedAt !== undefined && r.finishedAt !== undefined);
    const t0 = timed.reduce((m, r) => Math.min(m, r.startedAt!), Infinity);
    const toModel = (ms: number) => (ms - t0) / scale;
    const start = new Map(timed.map((r) => [r.name, toModel(r.startedAt!)]));
    const end = new Map(timed.map((r) => [r.name, toModel(r.finishedAt!)]));
    let maxLag = { name: "", seconds: 0 };
    for (const n of nodes) {
        const s = start.get(n.name);
        if (s === undefined) continue;
        const lag = s - n.awaits.reduce((m, a) => Math.max(m, end.get(a) ?? 0), 0);
        if (lag > maxLag.seconds) maxLag = { name: n.name, seconds: lag };
    }
    return { scale, makespan: timed.reduce((m, r) => Math.max(m, toModel(r.finishedAt!)), 0), start, end, maxLag };
};
