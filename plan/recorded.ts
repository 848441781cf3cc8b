// The plan as the program actually registers it: guests, each guest's steps in order, and where cross-guest edges
// attach. Everything here is derived from the recorded registrations (parents, dependencies, inputs), never from the
// catalog, so the plan shows what `pulumi up` would do, including any mistake in the components. The one exception is
// each guest's declared dependsOn, which the caller passes in: the registrations cannot tell it from a feature's
// `after` (both are readiness waits).
import { type Kind, indexGuests, readinessWaves, transitiveReduction } from "../catalog/graph";
import { type Recording, type Registration, providerUrnOf } from "./engine";
import { type LatencyModel, stepCost } from "./latency";
import type { Route } from "../catalog/routes";

/** How a step waits on another guest. */
export type WaitKind =
    | "clone" // the clone takes the source's vmId, which resolves once the source is complete
    | "lane" // one clone of a source at a time: waits for the previous clone's create
    | "gpu" // a GPU lane: a GPU server waits for a template on its GPU to be converted (stopped), which frees its share
    | "ca" // takes the CA root certificate from the CA guest's step_ca output
    | "input" // takes some other output of another guest's step
    | "ready" // waits for another guest to be ready (catalog dependsOn, or a feature's `after`)
    | "step"; // waits for one step of another guest before that guest is ready (Traefik's routes: the gateway's application)

export interface CrossWait {
    kind: WaitKind;
    guest: number;
    /** The other guest's resources this step awaits, by name. */
    via: string[];
}

export interface PlanStep {
    name: string;
    role: string;
    type: string;
    /** Owning guest; undefined for resources outside any guest (the provider). */
    guest?: number;
    what: string;
    seconds: number;
    /** Latency-model entry behind `seconds`. */
    figure: string;
    /** Names of every resource the SDK awaits before registering this one: dependencies, deletedWith, parent, provider. */
    awaits: string[];
    /** The waits that cross to another guest; readiness waits implied by another one are left out. */
    waits: CrossWait[];
    /** Clone source guest, for a container or VM created as a clone: clones of one source take its lock in turn. */
    cloneOf?: number;
    custom: boolean;
    /** The Proxmox node it runs on (its guest's node), and whether it counts against the node's heavy-step limit. */
    host?: string;
    heavy: boolean;
}

export interface PlanGuest {
    id: number;
    name: string;
    kind: Kind;
    /** Proxmox node, from its container's or VM's nodeName. */
    node: string;
    cloneFrom?: number;
    /** The catalog's dependsOn for this guest, as declared. */
    dependsOn: number[];
    /**
     * Guests whose readiness this one's steps wait for directly, as recorded (catalog dependsOn and features' `after`
     * alike), after transitive reduction over every guest edge.
     */
    waitsFor: number[];
    /** Custom resources of the guest in lifecycle order. */
    steps: PlanStep[];
}

export interface GuestEdge {
    from: number; // dependent
    to: number; // dependency
    kinds: WaitKind[];
}

export interface PulledIn {
    id: number;
    by: number;
    reason: string;
}

export interface RecordedPlan {
    selection: { requested: number[]; pulledIn: PulledIn[]; managed: number[] };
    guests: PlanGuest[];
    /** Every guest-level dependency edge (clone lanes are scheduling, not dependencies, and are listed apart). */
    edges: GuestEdge[];
    /** The transitive reduction of `edges`: what the dependency graph shows. */
    reduced: GuestEdge[];
    /**
     * Waits for one step of another guest, not its readiness ("step"): apart from `edges`, whose waves they would
     * loop (the gateway's health check waits for Traefik, whose routes wait for the gateway's application).
     */
    stepEdges: { from: number; to: number; via: string[] }[];
    waves: number[][];
    lanes: { source: number; clones: number[] }[];
    /** GPU lanes as registered: each GPU server step that waits for templates on its GPU to free their share. */
    gpuLanes: { guest: number; step: string; after: string[] }[];
    /** Each route's request path, as the program states it (checked by the catalog before any resource). */
    routes: Route[];
    /** Guests per Proxmox node, nodes in order of first appearance. */
    nodes: { node: string; guests: number[] }[];
    /** Every registered resource (components and provider too), for the simulation. */
    resources: PlanStep[];
}

const GUEST_TYPES: Record<string, Kind> = { "phoenix:index:LxcGuest": "lxc", "phoenix:index:VmGuest": "vm" };
/** The container or VM itself: its create (or clone) is the guest's first step on the node. */
export const MACHINE_TYPES = new Set(["proxmoxve:index/containerLegacy:ContainerLegacy", "proxmoxve:index/vmLegacy:VmLegacy"]);

/** `urn:pulumi:<stack>::<project>::<parent types $-joined>$<type>::<name>` -> its own type and name. */
const urnParts = (urn: string): { type: string; name: string } => {
    const parts = urn.split("::");
    const types = parts[2] ?? "";
    return { type: types.slice(types.lastIndexOf("$") + 1), name: parts.slice(3).join("::") };
};

/** The guest a resource belongs to, from its parent URN: the guest component (its name is the guest ID). */
export const guestOfParent = (parentUrn: string): { id: number; kind: Kind } | undefined => {
    if (!parentUrn) return undefined;
    const { type, name } = urnParts(parentUrn);
    const kind = GUEST_TYPES[type];
    return kind ? { id: Number(name), kind } : undefined;
};

/** A resource's role: its name without the `<guest id>-` prefix. */
export const roleOf = (name: string, guest: number | undefined): string =>
    guest !== undefined && name.startsWith(`${guest}-`) ? name.slice(String(guest).length + 1) : name;

/** Lifecycle order for steps that do not wait on each other (dependencies always come first). */
const ROLE_ORDER = [
    /^os-template$/, /^image$/, /^vendor-data/, /^host-dirs$/, /^subids$/, /^(ct|vm)$/, /^resize$/, /^lxc-conf$/, /^fw-options$/, /^fw-/, /^start$/, /^wait$/,
    /^snap-pre-configured$/, /^feature-/, /^app$/, /^health$/, /^snap-/, /^template$/, /^ha(-group)?$/, /^ha-rule$/,
];
const roleRank = (role: string): number => {
    const i = ROLE_ORDER.findIndex((re) => re.test(role));
    return i < 0 ? ROLE_ORDER.length : i;
};

/** Kahn's algorithm within one guest, picking by lifecycle rank, then registration order. */
const lifecycleOrder = (steps: PlanStep[]): PlanStep[] => {
    const byName = new Map(steps.map((s, i) => [s.name, i]));
    const pending = steps.map((s) => s.awaits.filter((a) => byName.has(a)).length);
    const dependents = steps.map(() => [] as number[]);
    steps.forEach((s, i) => s.awaits.forEach((a) => byName.has(a) && dependents[byName.get(a)!].push(i)));
    const key = (i: number) => roleRank(steps[i].role) * 1e6 + i;
    const ready = steps.map((_, i) => i).filter((i) => pending[i] === 0);
    const out: PlanStep[] = [];
    while (ready.length > 0) {
        ready.sort((a, b) => key(a) - key(b));
        const i = ready.shift()!;
        out.push(steps[i]);
        for (const d of dependents[i]) if (--pending[d] === 0) ready.push(d);
    }
    return out;
};

/** Owning guest of each registration (through the parent chain), memoised. */
const guestResolver = (byUrn: ReadonlyMap<string, Registration>) => {
    const cache = new Map<string, { id: number; kind: Kind } | undefined>();
    const guestOf = (r: Registration): { id: number; kind: Kind } | undefined => {
        if (cache.has(r.urn)) return cache.get(r.urn);
        const parent = byUrn.get(r.parent);
        const g = guestOfParent(r.parent) ?? (parent ? guestOf(parent) : undefined);
        cache.set(r.urn, g);
        return g;
    };
    return guestOf;
};

/** One plan step per registration: role, cost, and everything the SDK awaits before sending it. */
const toSteps = (regs: readonly Registration[], byUrn: ReadonlyMap<string, Registration>, model: LatencyModel): PlanStep[] => {
    const guestOf = guestResolver(byUrn);
    const cloneSourceOf = (r: Registration): number | undefined => {
        if (!MACHINE_TYPES.has(r.type) || !r.inputs?.clone) return undefined;
        const from = (r.propertyDependencies.clone ?? []).map((u) => byUrn.get(u)).find((d) => d && guestOf(d));
        return from ? guestOf(from)!.id : Number(r.inputs.clone.vmId);
    };
    const nodeOf = nodesOfGuests(regs, guestOf);
    return regs.map((r) => {
        const g = guestOf(r);
        const role = roleOf(r.name, g?.id);
        const cloneOf = cloneSourceOf(r);
        const cost = stepCost(model, { type: r.type, role, kind: g?.kind, custom: r.custom, clone: cloneOf !== undefined });
        // Dependencies (replaceWith included), the deletedWith resource, the parent and the provider.
        const awaits = [...new Set([...r.dependencies, r.deletedWith, r.parent, providerUrnOf(r.provider)])].filter((u) => u && byUrn.has(u)).map((u) => byUrn.get(u)!.name);
        const host = g ? nodeOf.get(g.id) : undefined;
        return { name: r.name, role, type: r.type, guest: g?.id, what: cost.what, seconds: cost.seconds, figure: cost.figure, heavy: cost.heavy, host, awaits, waits: [], cloneOf, custom: r.custom };
    });
};

/** Each guest's Proxmox node: its container's or VM's nodeName. */
const nodesOfGuests = (regs: readonly Registration[], guestOf: (r: Registration) => { id: number } | undefined): Map<number, string> => {
    const nodes = new Map<number, string>();
    for (const r of regs) if (MACHINE_TYPES.has(r.type) && typeof r.inputs?.nodeName === "string") nodes.set(guestOf(r)!.id, r.inputs.nodeName);
    return nodes;
};

const GPU_SHARE = "# @gpu-share ";
/**
 * A step that runs a GPU server reserving a share of GPU memory: its script (stdin) declares `# @gpu-share`. Asked of
 * every registration: a script without the marker anywhere (JSON escapes never produce it) is answered without
 * copying it twice (its JSON text, then that with newlines): two copies of every script in a plan, all garbage.
 */
export const isGpuServerStep = (r: Registration): boolean => {
    const stdin = r.inputs?.stdin;
    if (typeof stdin === "string" && !stdin.includes(GPU_SHARE)) return false;
    return /^# @gpu-share /m.test(JSON.stringify(stdin ?? "").replace(/\\n/g, "\n"));
};

/** Each guest's GPUs as node/index, from its container's device passthroughs (/dev/nvidia<N>). */
export const gpusOfGuests = (regs: readonly Registration[], guestOf: (r: Registration) => { id: number } | undefined): Map<number, Set<string>> => {
    const out = new Map<number, Set<string>>();
    for (const r of regs) {
        if (r.type !== "proxmoxve:index/containerLegacy:ContainerLegacy") continue;
        const gpus = ((r.inputs?.devicePassthroughs ?? []) as { path?: string }[]).map((d) => /^\/dev\/nvidia(\d+)$/.exec(d.path ?? "")?.[1]).filter((g) => g !== undefined);
        if (gpus.length > 0) out.set(guestOf(r)!.id, new Set(gpus.map((g) => `${r.inputs.nodeName}/${g}`)));
    }
    return out;
};

/** Roles that follow a guest's readiness (HA takes over a guest once it is provisioned). */
const AFTER_READY = /^ha(-group|-rule)?$/;

/**
 * Each guest's last steps: what its readiness waits for (components/guest.ts settle), the steps no other step of
 * the guest awaits, HA aside.
 */
const lastStepsOf = (resources: readonly PlanStep[]): ((guest: number) => Set<string>) => {
    const own = groupBy(resources.filter((s) => s.custom && s.guest !== undefined && !AFTER_READY.test(s.role)), (s) => s.guest!);
    const memo = new Map<number, Set<string>>();
    return (guest) => {
        let last = memo.get(guest);
        if (!last) {
            const steps = own(guest);
            const awaited = new Set(steps.flatMap((s) => s.awaits));
            memo.set(guest, (last = new Set(steps.filter((s) => !awaited.has(s.name)).map((s) => s.name))));
        }
        return last;
    };
};

/**
 * How a dependency on another guest's resource reaches a step: as the clone's wait for its source (a dependsOn on the
 * source's last steps, or an input in older programs), through another input (the CA root when it is step_ca's
 * output), as the previous clone of the same source, as a GPU server's wait for a template on its GPU to be converted
 * (`gpuLane`, unless the guest declares a dependency on it), as readiness (the other guest's last steps), or else as a
 * wait for one of its steps.
 */
const crossWaits = (
    r: Registration,
    step: PlanStep,
    stepOfUrn: (urn: string) => PlanStep | undefined,
    isLast: (dep: PlanStep) => boolean,
    gpuLane: (dep: PlanStep) => boolean = () => false,
): CrossWait[] => {
    const viaProperty = new Map<string, string>();
    for (const [prop, urns] of Object.entries(r.propertyDependencies)) for (const u of urns) if (!viaProperty.has(u) || prop === "clone") viaProperty.set(u, prop);
    const waits = new Map<string, CrossWait>();
    for (const u of r.dependencies) {
        const dep = stepOfUrn(u);
        if (!dep || dep.guest === undefined || dep.guest === step.guest) continue;
        const prop = viaProperty.get(u);
        const kind: WaitKind =
            prop === "clone" || (step.cloneOf !== undefined && dep.guest === step.cloneOf) ? "clone"
            : prop !== undefined ? (dep.role === "feature-step_ca" ? "ca" : "input")
            : step.cloneOf !== undefined && dep.cloneOf === step.cloneOf ? "lane"
            : gpuLane(dep) ? "gpu"
            : isLast(dep) ? "ready"
            : "step";
        const key = `${kind}:${dep.guest}`;
        const w = waits.get(key) ?? { kind, guest: dep.guest, via: [] };
        w.via.push(dep.name);
        waits.set(key, w);
    }
    return [...waits.values()];
};

/** Guest-level edges from the steps' waits; clone and GPU lanes are scheduling, and waits for one step are listed apart. */
const guestEdges = (waitsOf: ReadonlyMap<PlanStep, CrossWait[]>): GuestEdge[] => {
    const kinds = new Map<string, Set<WaitKind>>();
    for (const [step, waits] of waitsOf) {
        for (const w of waits.filter((x) => x.kind !== "lane" && x.kind !== "gpu" && x.kind !== "step")) {
            const key = `${step.guest}->${w.guest}`;
            (kinds.get(key) ?? kinds.set(key, new Set()).get(key)!).add(w.kind);
        }
    }
    return [...kinds].map(([key, k]) => {
        const [from, to] = key.split("->").map(Number);
        return { from, to, kinds: [...k].sort() };
    });
};

const groupBy = <T, K>(items: readonly T[], key: (t: T) => K): ((k: K) => T[]) => {
    const m = new Map<K, T[]>();
    for (const t of items) (m.get(key(t)) ?? m.set(key(t), []).get(key(t))!).push(t);
    return (k) => m.get(k) ?? [];
};

/**
 * Builds the plan from a complete recording (no failure). `dependsOn`: each guest's dependsOn as the catalog declares
 * it (a guest missing from it gets []).
 */
export const analyseRecording = (rec: Recording, model: LatencyModel, dependsOn: ReadonlyMap<number, readonly number[]>): RecordedPlan => {
    const regs = rec.registrations;
    const byUrn = new Map<string, Registration>(regs.map((r) => [r.urn, r]));
    const resources = toSteps(regs, byUrn, model);
    const stepByName = new Map(resources.map((s) => [s.name, s]));
    const stepOfUrn = (urn: string) => stepByName.get(byUrn.get(urn)?.name ?? "");

    const gpus = gpusOfGuests(regs, guestResolver(byUrn));
    const shareGpu = (a: number, b: number) => [...(gpus.get(a) ?? [])].some((x) => gpus.get(b)?.has(x));
    const waitsOf = new Map<PlanStep, CrossWait[]>();
    const lastSteps = lastStepsOf(resources);
    const isLast = (dep: PlanStep) => lastSteps(dep.guest!).has(dep.name);
    regs.forEach((r, i) => {
        const step = resources[i];
        if (step.guest === undefined) return;
        const server = isGpuServerStep(r);
        const gpuLane = (dep: PlanStep) => server && dep.role === "template" && shareGpu(step.guest!, dep.guest!) && !(dependsOn.get(step.guest!) ?? []).includes(dep.guest!);
        waitsOf.set(step, crossWaits(r, step, stepOfUrn, isLast, gpuLane));
    });
    const edges = guestEdges(waitsOf);
    assertDependenciesOrder(edges, dependsOn);
    const kindsOf = new Map(edges.map((e) => [`${e.from}->${e.to}`, e.kinds]));
    const reduced = transitiveReduction(edges).map((e) => ({ ...e, kinds: kindsOf.get(`${e.from}->${e.to}`)! }));
    // A step waiting for several guests' readiness shows only those not already implied by another of them.
    const reach = reachability(edges);
    for (const [step, waits] of waitsOf) {
        const ready = waits.filter((w) => w.kind === "ready").map((w) => w.guest);
        step.waits = waits.filter((w) => w.kind !== "ready" || !ready.some((other) => other !== w.guest && reach(other).has(w.guest)));
    }

    const components = new Map(regs.filter((r) => GUEST_TYPES[r.type]).map((r) => [Number(r.name), r]));
    const guestIds = [...components.keys()];
    const selection = (rec.outputs?.selection as RecordedPlan["selection"] | undefined) ?? { requested: guestIds, pulledIn: [], managed: guestIds };
    const edgesFrom = groupBy(edges, (e) => e.from);
    const reducedFrom = groupBy(reduced, (e) => e.from);
    const index = indexGuests(guestIds.map((id) => ({ id, kind: GUEST_TYPES[components.get(id)!.type], dependsOn: edgesFrom(id).map((e) => e.to) })));
    const waves = readinessWaves(index, guestIds);
    const managed = new Set(selection.managed);
    const order = [...selection.managed.filter((id) => index.has(id)), ...waves.flat().filter((id) => !managed.has(id))];

    const stepsOf = groupBy(resources.filter((s) => s.custom), (s) => s.guest);
    const regByName = new Map(regs.map((r) => [r.name, r]));
    const guests: PlanGuest[] = order.map((id) => {
        const steps = lifecycleOrder(stepsOf(id));
        const machineStep = steps.find((s) => MACHINE_TYPES.has(s.type));
        const machine = machineStep ? regByName.get(machineStep.name) : undefined;
        return {
            id,
            name: String(machine?.inputs?.initialization?.hostname ?? machine?.inputs?.name ?? ""),
            kind: GUEST_TYPES[components.get(id)!.type],
            node: String(machine?.inputs?.nodeName ?? ""),
            cloneFrom: steps.find((s) => s.cloneOf !== undefined)?.cloneOf,
            dependsOn: [...(dependsOn.get(id) ?? [])].sort((a, b) => a - b),
            waitsFor: reducedFrom(id).filter((e) => e.kinds.includes("ready")).map((e) => e.to).sort((a, b) => a - b),
            steps,
        };
    });
    const clonesOf = groupBy(guests.filter((g) => g.cloneFrom !== undefined), (g) => g.cloneFrom!);
    const sources = [...new Set(guests.map((g) => g.cloneFrom).filter((x): x is number => x !== undefined))];
    return {
        selection,
        guests,
        edges,
        reduced,
        stepEdges: [...waitsOf].flatMap(([step, waits]) => waits.filter((w) => w.kind === "step").map((w) => ({ from: step.guest!, to: w.guest, via: [...w.via] }))),
        waves,
        lanes: sources.map((source) => ({ source, clones: clonesOf(source).map((g) => g.id) })),
        gpuLanes: [...waitsOf].flatMap(([step, waits]) => {
            const after = waits.filter((w) => w.kind === "gpu").flatMap((w) => w.via);
            return after.length > 0 ? [{ guest: step.guest!, step: step.name, after: after.sort() }] : [];
        }),
        routes: ((rec.outputs as { routes?: Route[] } | undefined)?.routes) ?? [],
        nodes: [...new Set(guests.map((g) => g.node))].map((node) => ({ node, guests: guests.filter((g) => g.node === node).map((g) => g.id) })),
        resources,
    };
};

/**
 * A declared dependency always orders something (components/guest.ts gatedStep): a step of the guest waits for the
 * dependency's readiness. One that orders nothing is a bug in the components, never a plan to show.
 */
export const assertDependenciesOrder = (edges: readonly GuestEdge[], dependsOn: ReadonlyMap<number, readonly number[]>): void => {
    // A VM gated at its creation that depends on its own clone source waits for the source's readiness as the clone input.
    const waits = new Set(edges.filter((e) => e.kinds.includes("ready") || e.kinds.includes("clone")).map((e) => `${e.from}->${e.to}`));
    const unordered = [...dependsOn].flatMap(([id, deps]) => deps.filter((d) => !waits.has(`${id}->${d}`)).map((d) => `${id} -> ${d}`));
    if (unordered.length > 0) {
        throw new Error(`declared dependencies that order nothing (no step of the guest waits for the dependency's readiness): ${unordered.join(", ")}`);
    }
};

/** Memoised descendants over guest edges (dependent -> dependencies). */
const reachability = (edges: GuestEdge[]): ((from: number) => Set<number>) => {
    const next = groupBy(edges, (e) => e.from);
    const memo = new Map<number, Set<number>>();
    const reach = (from: number): Set<number> => {
        const known = memo.get(from);
        if (known) return known;
        const out = new Set<number>();
        memo.set(from, out); // acyclic (the catalog rejects cycles); this also stops a bad graph from looping
        for (const { to } of next(from)) {
            out.add(to);
            for (const t of reach(to)) out.add(t);
        }
        return out;
    };
    return reach;
};
