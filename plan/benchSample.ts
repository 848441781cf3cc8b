// One benchmark sample set, run in a process of its own by plan/bench.ts (so every size is measured from the same
// state, and none pays for another's heap): one unmeasured plan of the size (modules loaded, the heap grown to its
// size, the code optimised for its shapes), then `runs` times: the plan, its own resources replayed without the
// program, and as many bare resources with the SDK's debugging aids on (its defaults) and off (as the recorder runs
// the program), and, unless --no-since, the change preview against HEAD (`plan --since HEAD`: the program at HEAD
// through the provider twin, then the working tree's against it). Prints one JSON line:
// { resources, plan, replay, floor, quiet, since } (wall milliseconds per run) and the same as CPU milliseconds of the
// process (user + system, every thread: the collector's too) under "cpu": on a shared machine the wall clock also
// counts the time other processes hold the cores, the CPU time only this work.
//   ts-node -T plan/benchSample.ts [--catalog DIR [--config JSON]] [--runs N] [--no-since]
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as v8 from "v8";
import * as vm from "vm";
import type { ReplayResource } from "./benchFloor";
import { type Recording, providerUrnOf, recordProgram } from "./engine";
import { makePlan, type PlanOptions, type PlanResult } from "./plan";
import { planJson, renderText } from "./render";
import { changeJson, renderChangeText } from "./renderSince";
import { makeChangePlan } from "./since";
import { readStackConfig } from "./stackFile";

export const MEASURES = ["plan", "replay", "floor", "quiet", "since"] as const;
export type Measure = (typeof MEASURES)[number];

export interface Samples extends Record<Measure, number[]> {
    resources: number;
    /** The same measurements in CPU milliseconds of the process. */
    cpu: Record<Measure, number[]>;
}

const noLists = (): Record<Measure, number[]> => ({ plan: [], replay: [], floor: [], quiet: [], since: [] });
export const noSamples = (): Samples => ({ resources: 0, ...noLists(), cpu: noLists() });

/** Wall and CPU milliseconds of `f`. */
interface Timing {
    ms: number;
    cpuMs: number;
}
const cpuNow = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
};
const timed = async <T>(f: () => Promise<T>): Promise<Timing & { value: T }> => {
    collectGarbage();
    const c0 = cpuNow();
    const t0 = performance.now();
    const value = await f();
    return { ms: performance.now() - t0, cpuMs: cpuNow() - c0, value };
};

// Each measurement starts from a collected heap, so no run pays for the garbage of the one before.
v8.setFlagsFromString("--expose-gc");
const collectGarbage = vm.runInNewContext("gc") as () => void;

/** A plan as a user gets it: record, analyse, simulate, render (scale 0: no timed run). */
export const timePlan = async (opts: PlanOptions): Promise<Timing & { plan: PlanResult }> => {
    const { ms, cpuMs, value } = await timed(async () => {
        const plan = await makePlan({ ...opts, scale: 0 });
        renderText(plan);
        JSON.stringify(planJson(plan));
        return plan;
    });
    return { ms, cpuMs, plan: value };
};

/** The change preview against HEAD as a user gets it: both runs through the twin, analyse, simulate, render. */
const timeSince = (opts: PlanOptions): Promise<Timing> =>
    timed(async () => {
        const change = await makeChangePlan("HEAD", { ...opts, scale: 0 });
        renderChangeText(change);
        JSON.stringify(changeJson(change));
    });

const timeFloor = async (config: Record<string, unknown>, expected: number, sdkDebugAids = false): Promise<Timing> => {
    const sc = readStackConfig("dev");
    const t = await timed(() => recordProgram({ config: { ...sc.config, ...config }, secretKeys: sc.secretKeys, program: FLOOR_PROGRAM, sdkDebugAids }));
    const rec = t.value;
    if (rec.error || rec.registrations.length !== expected) throw new Error(`floor run: ${rec.error?.message ?? `${rec.registrations.length} registrations, expected ${expected}`}`);
    return { ms: t.ms, cpuMs: t.cpuMs };
};

/** The same number of bare resources (the component counts as one). */
const timeBare = (resources: number, sdkDebugAids = false) => timeFloor({ "phoenix:floorResources": resources }, resources, sdkDebugAids);

/** A recording's resources as the replay registers them (plan/benchFloor.ts): everything but the program. */
export const replayOf = (rec: Recording): ReplayResource[] => {
    const names = new Map(rec.registrations.map((r) => [r.urn, r.name]));
    const byUrn = (urns: string[]) => urns.map((d) => names.get(d)!).filter(Boolean);
    return rec.registrations.map((r): ReplayResource => ({
        type: r.type,
        name: r.name,
        custom: r.custom,
        parent: names.get(r.parent),
        dependsOn: byUrn(r.dependencies),
        inputs: r.inputs,
        propertyDependencies: Object.fromEntries(Object.entries(r.propertyDependencies).map(([k, urns]) => [k, byUrn(urns)])),
        options: {
            provider: r.provider ? names.get(providerUrnOf(r.provider)) : undefined,
            providers: Object.values(r.providers ?? {}).map((ref) => names.get(providerUrnOf(ref))!).filter(Boolean),
            set: Object.fromEntries(r.explicit.map((k) => [k, r[k]])),
            customTimeouts: r.customTimeouts,
            ignoreChanges: r.ignoreChanges,
            replaceOnChanges: r.replaceOnChanges,
            additionalSecretOutputs: r.additionalSecretOutputs,
            replaceWith: byUrn(r.replaceWith),
            deletedWith: r.deletedWith ? names.get(r.deletedWith) : undefined,
        },
    }));
};

export const FLOOR_PROGRAM = path.join(__dirname, "benchFloor");

/** The plan's own resources, registered without the program. */
const timeReplay = (rec: Recording, file: string): Promise<Timing> => {
    const replay = replayOf(rec);
    fs.writeFileSync(file, JSON.stringify(replay));
    return timeFloor({ "phoenix:floorReplay": file }, replay.length);
};

/** A timed plan, keeping only its recording (for the replay): the rest is dropped before the next measurement. */
const planSample = async (opts: PlanOptions): Promise<Timing & { recording: Recording }> => {
    const { ms, cpuMs, plan } = await timePlan(opts);
    return { ms, cpuMs, recording: plan.recording };
};

export const sample = async (opts: PlanOptions, runs: number, withSince = true): Promise<Samples> => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-bench-"));
    try {
        await timePlan(opts);
        if (withSince) await timeSince(opts);
        await timeBare(50);
        const out = noSamples();
        const add = (m: Measure, t: Timing) => {
            out[m].push(t.ms);
            out.cpu[m].push(t.cpuMs);
        };
        for (let i = 0; i < runs; i++) {
            const { recording, ...plan } = await planSample(opts);
            add("plan", plan);
            // Right after the plan it is compared with, from the same state of the process.
            if (withSince) add("since", await timeSince(opts));
            out.resources = recording.registrations.length;
            add("replay", await timeReplay(recording, path.join(scratch, "replay.json")));
            add("floor", await timeBare(out.resources, true));
            add("quiet", await timeBare(out.resources));
        }
        return out;
    } finally {
        fs.rmSync(scratch, { recursive: true, force: true });
    }
};

if (require.main === module) {
    const arg = (name: string): string | undefined => {
        const i = process.argv.indexOf(name);
        return i > 0 ? process.argv[i + 1] : undefined;
    };
    const catalog = arg("--catalog");
    const config = arg("--config");
    sample(catalog ? { catalog, guests: "all", ...(config ? { config: JSON.parse(config) as Record<string, unknown> } : {}) } : {}, Number(arg("--runs") ?? 1), !process.argv.includes("--no-since"))
        .then((s) => console.log(JSON.stringify(s)))
        .catch((e) => {
            console.error(`error: ${(e as Error).message}`);
            process.exitCode = 1;
        });
}
