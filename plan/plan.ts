// The offline plan: run the real program under the mock engine with a stack's config, read the plan off the
// registrations, and simulate `pulumi up` on it (optionally with an injected failure). Shared by the CLI, the
// benchmark and the tests; it prints nothing.
import * as path from "path";
import { type MockedResource, type Recording, recordProgram } from "./engine";
import { type LatencyModel, loadLatencyModel, stepCost } from "./latency";
import { MACHINE_TYPES, type PlanStep, type RecordedPlan, analyseRecording, guestOfParent, roleOf } from "./recorded";
import { type Measured, type Schedule, type SimNode, blockedBy, measure, simulate } from "./simulate";
import { PROJECT_ROOT, readStackConfig } from "./stackFile";

export interface PlanOptions {
    /** Stack whose Pulumi.<stack>.yaml is read (default dev). */
    stack?: string;
    /** Overrides phoenix:guests (and phoenix:selectAll). */
    guests?: number[] | "all";
    /** Overrides phoenix:catalog: a directory, absolute or relative to the project root. */
    catalog?: string;
    /** Wall milliseconds per model second for the timed run under the SDK; 0 (the default) skips it: analytic figures only. */
    scale?: number;
    /** Inject a failure into this step (guest ID and role, e.g. 103 and feature-step_ca). */
    fail?: { guest: number; role: string };
    model?: LatencyModel;
}

/** Bad input: the message is for the user as it stands; exitCode 2 for usage mistakes, 1 for a failed program. */
export class PlanError extends Error {
    constructor(message: string, readonly exitCode: 1 | 2) {
        super(message);
        this.name = "PlanError";
    }
}

export interface BlockedGuest {
    guest: number;
    /** Its first step that never runs, and the step (failed or blocked) it waits for. */
    firstBlocked: string;
    waitsOn: string;
    /** How many of its steps never run. */
    steps: number;
}

export interface FailureReport {
    /** The failing resource. */
    resource: string;
    guest: number;
    /** When it fails, in model seconds (at the end of its own duration). */
    at: number;
    blocked: BlockedGuest[];
    /** Guests with every step done, and when they are ready. */
    finished: { guest: number; at: number }[];
    /** When the last step that still runs is done. */
    settledAt: number;
    /** Resources the failing run under the SDK never started, against the analysis (should be equal). */
    measured: { neverStarted: number; agrees: boolean; onlyMeasured: string[]; onlyAnalysed: string[] };
}

export interface PlanResult {
    stack: string;
    catalog: string;
    model: LatencyModel;
    recorded: RecordedPlan;
    schedule: Schedule;
    /** The timed run's own clock (undefined with scale 0). */
    measured?: Measured;
    /** The registrations the plan was read from. */
    recording: Recording;
    failure?: FailureReport;
}

/** Model seconds of a resource as the mock engine sees it (same table as the analysis, so both agree). */
const secondsOf = (model: LatencyModel, r: MockedResource): number => {
    const guest = guestOfParent(r.parent);
    const clone = MACHINE_TYPES.has(r.type) && r.inputs?.clone !== undefined;
    return stepCost(model, { type: r.type, role: roleOf(r.name, guest?.id), kind: guest?.kind, custom: r.custom, clone }).seconds;
};

/**
 * Wall milliseconds per resource for the run under the SDK: its modelled time, plus, for a clone, the wait for its
 * source's lock (held for the whole clone, as in the analysis; first come, first served).
 */
const timedLatency = (model: LatencyModel, scale: number) => {
    const lockFree = new Map<string, number[]>();
    return (r: MockedResource): number => {
        const ms = secondsOf(model, r) * scale;
        const source = MACHINE_TYPES.has(r.type) ? r.inputs?.clone?.vmId : undefined;
        if (source === undefined) return ms;
        const now = performance.now();
        const slots = lockFree.get(String(source)) ?? Array(Math.max(1, model.limits.concurrent_clones_per_source)).fill(0);
        const slot = slots.indexOf(Math.min(...slots));
        const start = Math.max(now, slots[slot]);
        slots[slot] = start + ms;
        lockFree.set(String(source), slots);
        return start + ms - now;
    };
};

export const simNodes = (resources: readonly PlanStep[]): SimNode[] =>
    resources.map((s) => ({ name: s.name, seconds: s.seconds, awaits: s.awaits, lock: s.cloneOf !== undefined ? String(s.cloneOf) : undefined }));

export const makePlan = async (opts: PlanOptions = {}): Promise<PlanResult> => {
    const stack = opts.stack ?? "dev";
    const model = opts.model ?? loadLatencyModel();
    const scale = opts.scale ?? 0;
    let sc: ReturnType<typeof readStackConfig>;
    try {
        sc = readStackConfig(stack);
    } catch (e) {
        throw new PlanError((e as Error).message, 1);
    }
    const config = { ...sc.config };
    const ns = (k: string) => `${sc.project}:${k}`;
    if (opts.guests !== undefined) {
        config[ns("selectAll")] = opts.guests === "all";
        if (opts.guests !== "all") config[ns("guests")] = opts.guests;
    }
    if (opts.catalog !== undefined) config[ns("catalog")] = opts.catalog;
    const run = (fail?: string): Promise<Recording> =>
        recordProgram({
            config,
            secretKeys: sc.secretKeys,
            stack,
            project: sc.project,
            latency: scale > 0 ? timedLatency(model, scale) : undefined,
            fail: fail ? (r) => r.name === fail : undefined,
        });

    const rec = await run();
    if (rec.error) throw new PlanError(rec.error.message, 1);
    const recorded = analyseRecording(rec, model);
    const nodes = simNodes(recorded.resources);
    const schedule = simulate(nodes, model.limits.concurrent_clones_per_source);
    const result: PlanResult = {
        stack,
        catalog: String(config[ns("catalog")] ?? "guests"),
        model,
        recorded,
        schedule,
        measured: scale > 0 ? measure(rec.registrations, scale, nodes) : undefined,
        recording: rec,
    };
    if (opts.fail) {
        const target = `${opts.fail.guest}-${opts.fail.role}`;
        const guest = recorded.guests.find((g) => g.id === opts.fail!.guest);
        if (!guest) throw new PlanError(`--fail ${opts.fail.guest}:${opts.fail.role}: guest ${opts.fail.guest} is not in the plan (guests: ${recorded.guests.map((g) => g.id).join(", ")})`, 2);
        if (!guest.steps.some((s) => s.name === target)) {
            throw new PlanError(`--fail ${opts.fail.guest}:${opts.fail.role}: guest ${guest.id} has no step ${opts.fail.role} (steps: ${guest.steps.map((s) => s.role).join(", ")})`, 2);
        }
        result.failure = analyseFailure(recorded, nodes, target, model, await run(target));
    }
    return result;
};

/** What never runs when `target` fails (analysis), checked against the run under the SDK with that failure injected. */
const analyseFailure = (recorded: RecordedPlan, nodes: SimNode[], target: string, model: LatencyModel, rec: Recording): FailureReport => {
    const blocked = blockedBy(nodes, target);
    const after = simulate(nodes.filter((n) => !blocked.has(n.name)), model.limits.concurrent_clones_per_source);
    const failedGuest = recorded.resources.find((s) => s.name === target)!.guest!;
    const out: Omit<FailureReport, "measured"> = { resource: target, guest: failedGuest, at: after.end.get(target)!, blocked: [], finished: [], settledAt: after.makespan };
    for (const g of recorded.guests) {
        const never = g.steps.filter((s) => blocked.has(s.name));
        if (g.id === failedGuest) continue;
        if (never.length === 0) {
            out.finished.push({ guest: g.id, at: g.steps.reduce((m, s) => Math.max(m, after.end.get(s.name) ?? 0), 0) });
            continue;
        }
        const first = never[0];
        const waitsOn = first.awaits.find((a) => a === target || blocked.has(a)) ?? target;
        out.blocked.push({ guest: g.id, firstBlocked: first.name, waitsOn, steps: never.length });
    }
    const started = new Set(rec.registrations.map((r) => r.name));
    const neverStarted = nodes.map((n) => n.name).filter((n) => !started.has(n));
    const onlyMeasured = neverStarted.filter((n) => !blocked.has(n));
    const onlyAnalysed = [...blocked].filter((n) => started.has(n));
    return { ...out, measured: { neverStarted: neverStarted.length, agrees: onlyMeasured.length === 0 && onlyAnalysed.length === 0, onlyMeasured, onlyAnalysed } };
};

/** `--catalog DIR` as the program expects it: relative to the project root when inside it, else absolute. */
export const catalogArg = (dir: string, cwd = process.cwd()): string => {
    const abs = path.resolve(cwd, dir);
    const rel = path.relative(PROJECT_ROOT, abs);
    return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : abs;
};
