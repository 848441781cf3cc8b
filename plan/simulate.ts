// The simulated `pulumi up`, computed exactly from the recorded dependency graph. Like the Pulumi engine's step
// executor, it starts each resource once everything it awaits has finished, in the order resources become ready (ties
// in registration order), with at most `parallel` resources in progress at once (`pulumi up --parallel N`; unlimited
// by default, as the CLI's default). Resources of zero duration (components, the provider) never take a slot. A clone
// holds its source's lock for its whole duration (latency model limits.concurrent_clones_per_source); while it waits
// for the lock it is already in progress (the provider waits for Proxmox), so it holds its slot. Likewise a heavy step
// (a clone or create, a download, a feature or application script) waits while its Proxmox node already runs the most
// it can (latency model limits.concurrent_heavy_steps_per_node): the node's disks, CPU and network are shared. All
// figures are model seconds.
import type { Registration } from "./engine";

export interface SimNode {
    name: string;
    seconds: number;
    /** Names of the nodes it waits for. */
    awaits: string[];
    /** Lock held for the whole duration (the clone source), if any. */
    lock?: string;
    /** The Proxmox node it runs on, and whether it is a heavy step there (limited per node). */
    host?: string;
    heavy?: boolean;
}

export interface Schedule {
    /** At most this many resources with a duration in progress at once (Infinity: unlimited). */
    parallel: number;
    /** When the engine starts the resource (it may then wait for a clone lock). */
    sent: Map<string, number>;
    /** When the resource's own work starts (after any clone lock wait) and ends. */
    start: Map<string, number>;
    end: Map<string, number>;
    /** When the last resource finishes. */
    makespan: number;
    /** One resource after another: what the original phoenix-cli does. */
    serial: number;
    /** Longest chain of dependencies weighted by duration: no schedule can beat it. */
    criticalPath: { seconds: number; steps: string[] };
    /** Seconds clones spent waiting for their source's lock after they were started. */
    lockWait: number;
    /** Seconds resources spent ready but waiting for a free slot (0 with unlimited parallelism). */
    slotWait: number;
    /** At most this many heavy steps at once on one Proxmox node (Infinity: unlimited). */
    hostLimit: number;
    /** Seconds heavy steps spent waiting for their node, after they were started (and any clone lock). */
    hostWait: number;
    /** Per Proxmox node: when its last step ends, and its heavy steps' waits. */
    hosts: Map<string, { end: number; hostWait: number }>;
}

/** The earliest free of a set of slots (their free-at times), first come first served; the set is made on first use. */
export const earliestSlot = (pool: Map<string, number[]>, key: string, capacity: number): { free: number[]; slot: number } => {
    let free = pool.get(key);
    if (!free) pool.set(key, (free = Array(Math.max(1, capacity)).fill(0)));
    return { free, slot: free.indexOf(Math.min(...free)) };
};

/** Binary min-heap on [time, tie-break]. */
class Queue {
    private readonly items: [number, number][] = [];
    get size(): number {
        return this.items.length;
    }
    /** The least item, without taking it. */
    peek(): [number, number] {
        return this.items[0];
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
 * Event simulation. At each instant: finish what ends then, run what became ready with zero duration at once, then
 * start ready resources while a slot is free, earliest ready first (ties in the given order), so a clone lock goes to
 * the clone that was started first. Earliest-ready is what `pulumi up` does: its step executor hands steps to its N
 * workers in the order the program's registrations arrive, and a registration arrives once what it awaits is done;
 * the engine knows no durations, so it cannot favour the longest remaining path. Awaited names missing from `nodes`
 * are ignored (they never run).
 */
export const simulate = (nodes: readonly SimNode[], lockCapacity = 1, parallel = Infinity, hostLimit = Infinity): Schedule => {
    if (!(parallel >= 1)) throw new Error(`parallel must be at least 1 (got ${parallel})`);
    if (!(hostLimit >= 1)) throw new Error(`the per-node limit must be at least 1 (got ${hostLimit})`);
    const index = new Map(nodes.map((n, i) => [n.name, i]));
    const deps = nodes.map((n) => [...new Set(n.awaits)].filter((a) => index.has(a) && a !== n.name).map((a) => index.get(a)!));
    const dependents = nodes.map(() => [] as number[]);
    deps.forEach((ds, i) => ds.forEach((d) => dependents[d].push(i)));
    const pending = deps.map((ds) => ds.length);
    const instant = (i: number) => nodes[i].seconds === 0 && nodes[i].lock === undefined;
    const readyAt = nodes.map(() => 0);
    const sent = nodes.map(() => 0);
    const start = nodes.map(() => 0);
    const end = nodes.map(() => 0);
    const finished: number[] = []; // in order of completion: dependencies before dependents
    const locks = new Map<string, number[]>();
    const hostSlots = new Map<string, number[]>();
    const hostWaits = new Map<string, number>();
    let lockWait = 0;
    let slotWait = 0;
    let hostWait = 0;

    const ready = new Queue(); // [ready at, index]
    const running = new Queue(); // [end, index]
    const now: number[] = []; // zero-duration resources ready at the current instant
    const release = (i: number) => (instant(i) ? now.push(i) : ready.push([readyAt[i], i]));
    const finish = (i: number) => {
        finished.push(i);
        for (const d of dependents[i]) {
            readyAt[d] = Math.max(readyAt[d], end[i]);
            if (--pending[d] === 0) release(d);
        }
    };
    const begin = (i: number, t: number) => {
        const node = nodes[i];
        const lock = node.lock !== undefined ? earliestSlot(locks, node.lock, lockCapacity) : undefined;
        const host = node.heavy && node.host !== undefined && Number.isFinite(hostLimit) ? earliestSlot(hostSlots, node.host, hostLimit) : undefined;
        const afterLock = lock ? Math.max(t, lock.free[lock.slot]) : t;
        const s = host ? Math.max(afterLock, host.free[host.slot]) : afterLock;
        if (lock) lock.free[lock.slot] = s + node.seconds;
        if (host) {
            host.free[host.slot] = s + node.seconds;
            hostWaits.set(node.host!, (hostWaits.get(node.host!) ?? 0) + (s - afterLock));
        }
        lockWait += afterLock - t;
        hostWait += s - afterLock;
        slotWait += t - readyAt[i];
        [sent[i], start[i], end[i]] = [t, s, s + node.seconds];
    };

    pending.forEach((p, i) => p === 0 && release(i));
    let busy = 0;
    for (let t = 0; ; ) {
        for (let k = 0; k < now.length; k++) {
            begin(now[k], t);
            finish(now[k]);
        }
        now.length = 0;
        while (ready.size > 0 && busy < parallel) {
            const [, i] = ready.pop();
            begin(i, t);
            running.push([end[i], i]);
            busy++;
        }
        if (running.size === 0) break;
        t = running.peek()[0];
        while (running.size > 0 && running.peek()[0] === t) {
            const [, i] = running.pop();
            busy--;
            finish(i);
        }
    }
    if (finished.length < nodes.length) {
        const stuck = nodes.filter((_, i) => pending[i] > 0).map((n) => n.name);
        throw new Error(`dependency cycle among ${stuck.slice(0, 5).join(", ")}${stuck.length > 5 ? ", ..." : ""}`);
    }

    // Longest dependency chain ending at each node (independent of the schedule); ties go to the dependency that
    // finished first.
    const chain = nodes.map(() => 0);
    const chainFrom = nodes.map(() => -1);
    const rank = nodes.map(() => 0);
    finished.forEach((i, k) => (rank[i] = k));
    for (const i of finished) {
        for (const d of deps[i]) {
            const f = chainFrom[i];
            if (f < 0 || chain[d] > chain[f] || (chain[d] === chain[f] && rank[d] < rank[f])) chainFrom[i] = d;
        }
        chain[i] = (chainFrom[i] < 0 ? 0 : chain[chainFrom[i]]) + nodes[i].seconds;
    }
    let last = -1;
    for (const i of finished) if (last < 0 || chain[i] > chain[last]) last = i;
    const steps: string[] = [];
    for (let i = last; i >= 0; i = chainFrom[i]) steps.unshift(nodes[i].name);
    const byName = (xs: number[]) => new Map(nodes.map((n, i) => [n.name, xs[i]]));
    const hosts = new Map<string, { end: number; hostWait: number }>();
    nodes.forEach((n, i) => {
        if (n.host === undefined) return;
        const h = hosts.get(n.host) ?? { end: 0, hostWait: hostWaits.get(n.host) ?? 0 };
        hosts.set(n.host, { ...h, end: Math.max(h.end, end[i]) });
    });
    return {
        parallel,
        hostLimit,
        hostWait,
        hosts,
        sent: byName(sent),
        start: byName(start),
        end: byName(end),
        makespan: end.reduce((m, e) => Math.max(m, e), 0),
        serial: nodes.reduce((sum, n) => sum + n.seconds, 0),
        criticalPath: { seconds: last < 0 ? 0 : chain[last], steps },
        lockWait,
        slotWait,
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
