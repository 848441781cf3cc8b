// The offline plan: run the real program under the mock engine with a stack's config, read the plan off the
// registrations, and simulate `pulumi up` on it (optionally with an injected failure). Shared by the CLI, the
// benchmark and the tests; it prints nothing.
import * as path from "path";
import { type MockedResource, type Recording, recordProgram } from "./engine";
import { type LatencyModel, loadLatencyModel, stepCost } from "./latency";
import { MACHINE_TYPES, type PlanStep, type RecordedPlan, analyseRecording, guestOfParent, roleOf } from "./recorded";
import { type Measured, type Schedule, type SimNode, blockedBy, earliestSlot, measure, simulate } from "./simulate";
import { PROJECT_ROOT, addCatalogSecrets, readStackConfig } from "./stackFile";
import { type GpuUse, gpuUse, withPeaks } from "./gpus";

export interface PlanOptions {
    /** Stack whose Pulumi.<stack>.yaml is read (default dev). */
    stack?: string;
    /** Overrides phoenix:guests (and phoenix:selectAll). */
    guests?: number[] | "all";
    /** Overrides phoenix:catalog: a directory, absolute or relative to the project root. */
    catalog?: string;
    /** Other stack config values over the stack file's, by key with or without the namespace (e.g. phoenix:nodes); null unsets one. */
    config?: Record<string, unknown>;
    /** Wall milliseconds per model second for the timed run under the SDK; 0 (the default) skips it: analytic figures only. */
    scale?: number;
    /** Inject a failure into this step (guest ID and role, e.g. 103 and feature-step_ca). */
    fail?: { guest: number; role: string };
    /**
     * Report the failure as `pulumi up --continue-on-error` runs it (everything that does not wait on the failure
     * still runs) instead of as a default `pulumi up` (nothing starts after the failure; what runs finishes).
     */
    continueOnError?: boolean;
    /** At most this many resources in progress at once, as `pulumi up --parallel N` (default: unlimited, as the CLI's). */
    parallel?: number;
    model?: LatencyModel;
}

/** `pulumi up --parallel` in the deploy workflow (.github/workflows/deploy.yml): the plan always shows its makespan. */
export const DEPLOY_PARALLEL = 4;

/** Bad input: the message is for the user as it stands; exitCode 2 for usage mistakes, 1 for a failed program. */
export class PlanError extends Error {
    constructor(message: string, readonly exitCode: 1 | 2) {
        super(message);
        this.name = "PlanError";
    }
}

/** A guest whose first step that never runs waits (transitively) on the failed step. */
export interface BlockedGuest {
    guest: number;
    /** Its first step that never runs, and the step (failed or blocked) it waits for. */
    firstBlocked: string;
    waitsOn: string;
    /** How many of its steps never run. */
    steps: number;
}

/** A guest whose first step that never runs does not wait on the failure: the run stopped before it could start. */
export interface NotStartedGuest {
    guest: number;
    /** Its first step that never runs, and when it would have started without the failure. */
    firstNotStarted: string;
    wouldStartAt: number;
    /** How many of its steps never run. */
    steps: number;
}

/**
 * How the run goes on after a failure. "stop": a default `pulumi up` starts nothing after the first failure; steps
 * already in progress finish. "continue-on-error": `pulumi up --continue-on-error` runs everything that does not wait
 * on the failure.
 */
export type FailureMode = "stop" | "continue-on-error";

export interface FailureReport {
    mode: FailureMode;
    /** The failing resource. */
    resource: string;
    guest: number;
    /** When it fails, in model seconds (at the end of its own duration). */
    at: number;
    blocked: BlockedGuest[];
    /** Only in "stop" mode: guests the run stopped before they could finish, for no fault of the failure. */
    notStarted: NotStartedGuest[];
    /** Guests with every step done, and when they are ready. */
    finished: { guest: number; at: number }[];
    /** When the last step that still runs is done. */
    settledAt: number;
    /**
     * The run under the SDK with the failure injected, against the analysis. The mock engine has no step scheduler:
     * it never stops a run, it only leaves unregistered what awaits the failure. So what it checks, in either mode, is
     * which resources wait (transitively) on the failed step (`waitsOnFailure`, which should equal `neverStarted`);
     * in "continue-on-error" mode that is the whole prediction, in "stop" mode the steps the stop leaves unstarted
     * besides are the simulator's alone.
     */
    measured: { checks: "waits-on-failure"; waitsOnFailure: number; neverStarted: number; agrees: boolean; onlyMeasured: string[]; onlyAnalysed: string[] };
}

export interface PlanResult {
    stack: string;
    catalog: string;
    model: LatencyModel;
    recorded: RecordedPlan;
    /** The simulated `pulumi up` at the chosen --parallel (Infinity: unlimited). */
    schedule: Schedule;
    /** Makespans at unlimited parallelism and at the deploy workflow's --parallel, for comparison (model seconds). */
    makespans: { unlimited: number; deploy: number };
    /** The timed run's own clock (undefined with scale 0). */
    measured?: Measured;
    /** The registrations the plan was read from. */
    recording: Recording;
    /** GPUs passed through to guests, and which guests share each. */
    gpus: GpuUse[];
    failure?: FailureReport;
}

/** The cost of a resource as the mock engine sees it (same table as the analysis, so both agree). */
const costOf = (model: LatencyModel, r: MockedResource, guest = guestOfParent(r.parent)) => {
    const clone = MACHINE_TYPES.has(r.type) && r.inputs?.clone !== undefined;
    return stepCost(model, { type: r.type, role: roleOf(r.name, guest?.id), kind: guest?.kind, custom: r.custom, clone });
};

/**
 * Wall milliseconds per resource for the run under the SDK: its modelled time, plus the wait for one of `parallel`
 * slots (resources with a duration only; each takes the slot that frees first, in the order the SDK sends them: the
 * engine's step executor, first come, first served), for a clone the wait for its source's lock (held for the whole
 * clone, as in the analysis; first come, first served), and for a heavy step the wait for its node (at most the
 * model's concurrent_heavy_steps_per_node at once). A step's node is its guest's, known from the guest's machine.
 */
const timedLatency = (model: LatencyModel, scale: number, parallel: number) => {
    const lockFree = new Map<string, number[]>();
    const hostFree = new Map<string, number[]>();
    const nodeOfGuest = new Map<number, string>();
    const slotFree: number[] = Number.isFinite(parallel) ? Array(parallel).fill(0) : [];
    return (r: MockedResource): number => {
        const guest = guestOfParent(r.parent);
        if (guest && MACHINE_TYPES.has(r.type)) nodeOfGuest.set(guest.id, r.inputs.nodeName);
        const cost = costOf(model, r, guest);
        const ms = cost.seconds * scale;
        const source = MACHINE_TYPES.has(r.type) ? r.inputs?.clone?.vmId : undefined;
        const host = cost.heavy && guest ? nodeOfGuest.get(guest.id) ?? r.inputs?.nodeName : undefined;
        if (ms <= 0 || (source === undefined && host === undefined && slotFree.length === 0)) return ms;
        const now = performance.now();
        const slot = slotFree.length > 0 ? slotFree.indexOf(Math.min(...slotFree)) : -1;
        let start = slot >= 0 ? Math.max(now, slotFree[slot]) : now;
        const lock = source !== undefined ? earliestSlot(lockFree, String(source), model.limits.concurrent_clones_per_source) : undefined;
        const node = host !== undefined ? earliestSlot(hostFree, host, model.limits.concurrent_heavy_steps_per_node) : undefined;
        for (const held of [lock, node]) if (held) start = Math.max(start, held.free[held.slot]);
        for (const held of [lock, node]) if (held) held.free[held.slot] = start + ms;
        if (slot >= 0) slotFree[slot] = start + ms;
        return start + ms - now;
    };
};

export const simNodes = (resources: readonly PlanStep[]): SimNode[] =>
    resources.map((s) => ({ name: s.name, seconds: s.seconds, awaits: s.awaits, lock: s.cloneOf !== undefined ? String(s.cloneOf) : undefined, host: s.host, heavy: s.heavy }));

/** The config a run of the program gets: a stack file's (under `root`) with the plan's overrides. */
export const runConfig = (opts: PlanOptions, root?: string): { stack: string; project: string; config: Record<string, unknown>; secretKeys: string[] } => {
    const stack = opts.stack ?? "dev";
    let sc: ReturnType<typeof readStackConfig>;
    try {
        sc = readStackConfig(stack, root);
    } catch (e) {
        throw new PlanError((e as Error).message, 1);
    }
    // The working tree's stack file as the Pulumi CLI checks it (a revision's, under --since, was deployable then).
    if (root === undefined && sc.cliProblems.length > 0) {
        throw new PlanError(`pulumi up would stop before the program runs:\n${sc.cliProblems.join("\n")}\n(set the keys in Pulumi.${stack}.yaml, secrets with pulumi config set --secret; Pulumi.yaml declares only what every stack sets: components/configKeys.ts)`, 1);
    }
    const ns = (k: string) => (k.includes(":") ? k : `${sc.project}:${k}`);
    const config: Record<string, unknown> = { ...sc.config };
    const unset = new Set<string>();
    for (const [k, v] of Object.entries(opts.config ?? {})) {
        if (v === null) {
            delete config[ns(k)];
            unset.add(ns(k));
        } else config[ns(k)] = v;
    }
    if (opts.guests !== undefined) {
        config[ns("selectAll")] = opts.guests === "all";
        if (opts.guests !== "all") config[ns("guests")] = opts.guests;
    }
    if (opts.catalog !== undefined) config[ns("catalog")] = opts.catalog;
    // The stack's catalog's secrets have placeholders already (readStackConfig); another catalog (an override) may
    // name others. A key the override unsets stays unset.
    const run = { project: sc.project, config, secretKeys: [...sc.secretKeys] };
    if (config[ns("catalog")] !== sc.config[ns("catalog")]) addCatalogSecrets(run, root, unset);
    return { stack, ...run };
};

const checkParallel = (parallel: number): void => {
    if (!(parallel >= 1) || (Number.isFinite(parallel) && !Number.isInteger(parallel))) throw new PlanError(`--parallel ${parallel}: expected a positive integer`, 2);
};

/** The plan read off a complete recording: the recorded graph and the simulated `pulumi up` (no timed run). */
export const planOfRecording = (rec: Recording, opts: PlanOptions & { stack: string; catalog: string }): PlanResult => {
    const model = opts.model ?? loadLatencyModel();
    const parallel = opts.parallel ?? Infinity;
    checkParallel(parallel);
    const recorded = analyseRecording(rec, model, declaredDependsOn(rec));
    const nodes = simNodes(recorded.resources);
    const locks = model.limits.concurrent_clones_per_source;
    const perNode = model.limits.concurrent_heavy_steps_per_node;
    const schedule = simulate(nodes, locks, parallel, perNode);
    const makespanAt = (n: number) => (n === parallel ? schedule : simulate(nodes, locks, n, perNode)).makespan;
    return {
        stack: opts.stack,
        catalog: opts.catalog,
        model,
        recorded,
        schedule,
        makespans: { unlimited: makespanAt(Infinity), deploy: makespanAt(DEPLOY_PARALLEL) },
        recording: rec,
        gpus: withPeaks(gpuUse(rec, recorded), schedule.start, schedule.end),
    };
};

export const makePlan = async (opts: PlanOptions = {}): Promise<PlanResult> => {
    const model = opts.model ?? loadLatencyModel();
    const scale = opts.scale ?? 0;
    const parallel = opts.parallel ?? Infinity;
    checkParallel(parallel);
    const { stack, project, config, secretKeys } = runConfig(opts);
    const run = (fail?: string): Promise<Recording> =>
        recordProgram({
            config,
            secretKeys,
            stack,
            project,
            latency: scale > 0 ? timedLatency(model, scale, parallel) : undefined,
            fail: fail ? (r) => r.name === fail : undefined,
        });

    const rec = await run();
    if (rec.error) throw new PlanError(rec.error.message, 1);
    const result = planOfRecording(rec, { ...opts, model, stack, catalog: String(config[`${project}:catalog`] ?? "guests") });
    const { recorded, schedule } = result;
    const nodes = simNodes(recorded.resources);
    const locks = model.limits.concurrent_clones_per_source;
    if (scale > 0) result.measured = measure(rec.registrations, scale, nodes);
    if (opts.fail) {
        const target = `${opts.fail.guest}-${opts.fail.role}`;
        const guest = recorded.guests.find((g) => g.id === opts.fail!.guest);
        if (!guest) throw new PlanError(`--fail ${opts.fail.guest}:${opts.fail.role}: guest ${opts.fail.guest} is not in the plan (guests: ${recorded.guests.map((g) => g.id).join(", ")})`, 2);
        if (!guest.steps.some((s) => s.name === target)) {
            throw new PlanError(`--fail ${opts.fail.guest}:${opts.fail.role}: guest ${guest.id} has no step ${opts.fail.role} (steps: ${guest.steps.map((s) => s.role).join(", ")})`, 2);
        }
        const mode: FailureMode = opts.continueOnError ? "continue-on-error" : "stop";
        result.failure = analyseFailure(recorded, nodes, target, schedule, mode, locks, await run(target));
    }
    return result;
};

/**
 * Each guest's dependsOn as the catalog declares it, from the program's outputs: the recording cannot tell it apart
 * from a feature's `after` (both are readiness waits).
 */
const declaredDependsOn = (rec: Recording): ReadonlyMap<number, readonly number[]> => {
    const guests = ((rec.outputs as { guests?: Record<string, { dependsOn?: number[] }> } | undefined)?.guests) ?? {};
    return new Map(Object.entries(guests).map(([id, g]) => [Number(id), g.dependsOn ?? []]));
};

/**
 * What never runs when `target` fails (analysis), checked against the run under the SDK with that failure injected.
 * "stop" (a default `pulumi up`): at the failure time t, what the engine started before t runs to its end and
 * nothing starts at t or later. "continue-on-error": everything that does not (transitively) await the failed step
 * still runs, at the same --parallel.
 */
const analyseFailure = (
    recorded: RecordedPlan,
    nodes: SimNode[],
    target: string,
    schedule: Schedule,
    mode: FailureMode,
    locks: number,
    rec: Recording,
): FailureReport => {
    const waiting = blockedBy(nodes, target);
    const at = schedule.end.get(target)!;
    // Until the failure both runs are the same schedule; after it, "stop" starts nothing and "continue-on-error" goes
    // on without what waits on the failure (which it would only have started after t).
    const after = mode === "stop" ? undefined : simulate(nodes.filter((n) => !waiting.has(n.name)), locks, schedule.parallel, schedule.hostLimit);
    const endOf = (name: string): number | undefined =>
        after ? after.end.get(name) : name === target || schedule.sent.get(name)! < at ? schedule.end.get(name) : undefined;
    const failedGuest = recorded.resources.find((s) => s.name === target)!.guest!;
    const out: Omit<FailureReport, "measured"> = {
        mode,
        resource: target,
        guest: failedGuest,
        at,
        blocked: [],
        notStarted: [],
        finished: [],
        settledAt: nodes.reduce((m, n) => Math.max(m, endOf(n.name) ?? 0), 0),
    };
    for (const g of recorded.guests) {
        if (g.id === failedGuest) continue;
        const never = g.steps.filter((s) => endOf(s.name) === undefined);
        if (never.length === 0) {
            out.finished.push({ guest: g.id, at: g.steps.reduce((m, s) => Math.max(m, endOf(s.name)!), 0) });
            continue;
        }
        const first = never[0];
        if (waiting.has(first.name)) {
            const waitsOn = first.awaits.find((a) => a === target || waiting.has(a)) ?? target;
            out.blocked.push({ guest: g.id, firstBlocked: first.name, waitsOn, steps: never.length });
        } else out.notStarted.push({ guest: g.id, firstNotStarted: first.name, wouldStartAt: schedule.sent.get(first.name)!, steps: never.length });
    }
    const started = new Set(rec.registrations.map((r) => r.name));
    const neverStarted = nodes.map((n) => n.name).filter((n) => !started.has(n));
    const onlyMeasured = neverStarted.filter((n) => !waiting.has(n));
    const onlyAnalysed = [...waiting].filter((n) => started.has(n));
    return {
        ...out,
        measured: {
            checks: "waits-on-failure",
            waitsOnFailure: waiting.size,
            neverStarted: neverStarted.length,
            agrees: onlyMeasured.length === 0 && onlyAnalysed.length === 0,
            onlyMeasured,
            onlyAnalysed,
        },
    };
};

/** `--catalog DIR` as the program expects it: relative to the project root when inside it, else absolute. */
export const catalogArg = (dir: string, cwd = process.cwd()): string => {
    const abs = path.resolve(cwd, dir);
    const rel = path.relative(PROJECT_ROOT, abs);
    return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : abs;
};
