// Which guests share which GPU, read off the recorded registrations like the rest of the plan: a container's
// devicePassthroughs name /dev/nvidia<N> on its node; a GPU server step (its script declares `# @gpu-share`) states
// the share of GPU memory it reserves (or takes the script's default); a template step means the container stops,
// freeing its share, once converted; and the GPU lanes are the server steps' recorded waits for those conversions
// (catalog/gpuShares.ts decides them).
import type { Recording, Registration } from "./engine";
import { type RecordedPlan, gpusOfGuests, guestOfParent, isGpuServerStep, roleOf } from "./recorded";

export interface GpuShare {
    guest: number;
    /** The feature serving, e.g. vllm, and its step. */
    server: string;
    step: string;
    share: number;
    /** Whether the step states the share (else the script's default applies). */
    stated: boolean;
    /** A template: it holds the share only until it is converted. */
    template: boolean;
}

export interface GpuUse {
    node: string;
    gpu: number;
    /** Guests the GPU is passed through to, ascending. */
    guests: number[];
    /** The servers that reserve a share of the GPU's memory when they start, by guest. */
    shares: GpuShare[];
    /** Guests among them that become templates: they hold the GPU only while they are being built. */
    templates: number[];
    /** Other servers on the GPU (their scripts declare a unit but no share): memory the catalog does not count. */
    uncounted: { guest: number; server: string }[];
    /** The order in which the reserving servers start, as groups (each after the groups before it), when not all at once. */
    lane: number[][];
    /** The most memory reserved at once in the simulated run, and when (withPeaks). */
    peak?: { share: number; at: number };
}

const SHARE_LINE = /^# @gpu-share ([A-Z][A-Z0-9_]*) ([0-9.]+) /m;
const UNIT_LINE = /^# @unit /m;

/** The script a step runs (its stdin, secret envelope or not) as text. */
const scriptOf = (r: Registration): string => {
    const stdin = r.inputs?.stdin;
    return typeof stdin === "string" ? stdin : JSON.stringify(stdin ?? "").replace(/\\n/g, "\n");
};

/** The share a server step reserves: the value it passes for the script's share parameter, else the default. */
const shareOf = (r: Registration): { share: number; stated: boolean } => {
    const [, param, fallback] = SHARE_LINE.exec(scriptOf(r))!;
    const given = new RegExp(`\\b${param}='([0-9.]+)'`).exec(String(r.inputs?.create ?? ""))?.[1];
    return { share: Number(given ?? fallback), stated: given !== undefined };
};

/**
 * The lane of one GPU: its reserving servers in groups, each group starting after the ones before it, from the
 * recorded waits (a GPU lane wait, or a clone made from a converted template). Empty when nothing orders them.
 */
const laneOf = (servers: readonly number[], recorded: RecordedPlan): number[][] => {
    const on = new Set(servers);
    const after = new Map<number, Set<number>>(servers.map((g) => [g, new Set<number>()]));
    for (const l of recorded.gpuLanes) {
        for (const via of l.after) {
            const t = Number(via.split("-")[0]);
            if (on.has(l.guest) && on.has(t)) after.get(l.guest)!.add(t);
        }
    }
    const cloneOf = new Map(recorded.guests.map((g) => [g.id, g.cloneFrom]));
    for (const g of servers) {
        for (let src = cloneOf.get(g); src !== undefined; src = cloneOf.get(src)) if (on.has(src)) after.get(g)!.add(src);
    }
    if ([...after.values()].every((s) => s.size === 0)) return [];
    const level = new Map<number, number>();
    const levelOf = (g: number, depth = 0): number => {
        if (level.has(g)) return level.get(g)!;
        const l = depth > servers.length ? 0 : Math.max(-1, ...[...after.get(g)!].map((x) => levelOf(x, depth + 1))) + 1;
        level.set(g, l);
        return l;
    };
    const groups: number[][] = [];
    for (const g of servers) (groups[levelOf(g)] ??= []).push(g);
    return groups.filter((x) => x !== undefined).map((x) => x.sort((a, b) => a - b));
};

/** Every GPU passed through to at least one guest, by node and index. */
export const gpuUse = (rec: Recording, recorded: RecordedPlan): GpuUse[] => {
    const guestOf = (r: Registration) => guestOfParent(r.parent);
    const gpus = gpusOfGuests(rec.registrations, guestOf);
    const templates = new Set(rec.registrations.filter((r) => roleOf(r.name, guestOf(r)?.id) === "template").map((r) => guestOf(r)?.id));
    const servers = rec.registrations.filter((r) => guestOf(r) && gpus.has(guestOf(r)!.id) && roleOf(r.name, guestOf(r)!.id).startsWith("feature-"));
    const uses = new Map<string, GpuUse>();
    for (const [guest, keys] of gpus) {
        for (const key of keys) {
            const [node, gpu] = [key.slice(0, key.lastIndexOf("/")), Number(key.slice(key.lastIndexOf("/") + 1))];
            const use = uses.get(key) ?? uses.set(key, { node, gpu, guests: [], shares: [], templates: [], uncounted: [], lane: [] }).get(key)!;
            use.guests.push(guest);
            if (templates.has(guest)) use.templates.push(guest);
            for (const r of servers.filter((x) => guestOf(x)!.id === guest)) {
                const server = roleOf(r.name, guest).replace(/^feature-/, "");
                if (isGpuServerStep(r)) use.shares.push({ guest, server, step: r.name, ...shareOf(r), template: templates.has(guest) });
                else if (UNIT_LINE.test(scriptOf(r))) use.uncounted.push({ guest, server });
            }
        }
    }
    const asc = (a: number, b: number) => a - b;
    return [...uses.values()]
        .map((u) => ({
            ...u,
            guests: u.guests.sort(asc),
            templates: u.templates.sort(asc),
            shares: u.shares.sort((a, b) => a.guest - b.guest),
            uncounted: u.uncounted.sort((a, b) => a.guest - b.guest),
            lane: laneOf(u.shares.map((s) => s.guest).sort(asc), recorded),
        }))
        .sort((a, b) => a.node.localeCompare(b.node) || a.gpu - b.gpu);
};

/**
 * The most GPU memory reserved at once in a simulated run: a server holds its share from its step's start, a
 * template's until its conversion ends (it is stopped), any other's for good.
 */
export const withPeaks = (uses: readonly GpuUse[], start: ReadonlyMap<string, number>, end: ReadonlyMap<string, number>): GpuUse[] =>
    uses.map((u) => {
        const held = u.shares.map((s) => ({ from: start.get(s.step) ?? 0, to: s.template ? end.get(`${s.guest}-template`) ?? Infinity : Infinity, share: s.share }));
        let peak = { share: 0, at: 0 };
        for (const at of [...new Set(held.map((h) => h.from))].sort((a, b) => a - b)) {
            const share = Math.round(held.filter((h) => h.from <= at && at < h.to).reduce((sum, h) => sum + h.share, 0) * 100) / 100;
            if (share > peak.share) peak = { share, at };
        }
        return { ...u, peak };
    });

const total = (shares: readonly GpuShare[]): number => Math.round(shares.reduce((s, m) => s + m.share, 0) * 100) / 100;
const listed = (shares: readonly GpuShare[], joint = " + "): string => shares.map((m) => `${m.guest} ${m.share}${m.stated ? "" : " (default)"}`).join(joint);

/** The plan's lines for the GPUs (none when no guest has one). */
export const renderGpus = (uses: readonly GpuUse[]): string[] => {
    if (uses.length === 0) return [];
    const out = ["GPUs (device passthrough; the guests on one GPU share its memory)"];
    for (const u of uses) {
        const label = `${u.node} GPU ${u.gpu}`;
        const pad = " ".repeat(label.length + 2);
        out.push(`  ${label}  ${u.guests.join(", ")}${u.guests.length > 1 ? ` (shared by ${u.guests.length} guests)` : ""}`);
        const permanent = u.shares.filter((s) => !s.template);
        const temporary = u.shares.filter((s) => s.template);
        if (permanent.length > 0) out.push(`  ${pad}memory reserved for good (servers that stay): ${listed(permanent)} = ${total(permanent)} of the GPU`);
        if (temporary.length > 0) out.push(`  ${pad}memory reserved while built (templates, stopped once converted): ${listed(temporary, ", ")}`);
        if (u.lane.length > 0) out.push(`  ${pad}GPU lane (reserving servers that would not fit together start in turn): ${u.lane.map((g) => g.join(", ")).join(" -> ")}`);
        if (u.peak && u.shares.length > 0) {
            const over = u.peak.share > 1 ? ": MORE THAN THE GPU, the last server to start would fail" : "";
            out.push(`  ${pad}at most ${u.peak.share} of the GPU reserved at once in the simulated run (from ${u.peak.at} s)${over}`);
        }
        if (u.uncounted.length > 0) {
            out.push(`  ${pad}not counted (no share declared; their models take what is free): ${u.uncounted.map((s) => `${s.guest} ${s.server}`).join(", ")}`);
        }
        if (u.templates.length > 0) out.push(`  ${pad}templates, which release it once converted: ${u.templates.join(", ")}`);
    }
    return out;
};
