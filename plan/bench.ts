// npm run bench: prints figures, asserts nothing. Plan wall time for the reference selection and for synthetic
// catalogs of 100 and 1000 guests, each against the SDK's own cost of registering as many bare resources under the
// same mock engine (measured in this run); simulated makespan against serial for the reference selection and a
// 200-guest catalog; and the measured run under the SDK against the analytic makespan. Targets come from issue 6.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as v8 from "v8";
import * as vm from "vm";
import type { ReplayResource } from "./benchFloor";
import { type Recording, recordProgram } from "./engine";
import { makePlan, type PlanOptions, type PlanResult } from "./plan";
import { planJson, renderText } from "./render";
import { readStackConfig } from "./stackFile";
import { writeSyntheticCatalog } from "./synthetic";

// Each measurement starts from a collected heap, so no run pays for the garbage of the one before.
v8.setFlagsFromString("--expose-gc");
const collectGarbage = vm.runInNewContext("gc") as () => void;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number): string => `${x.toFixed(0)} ms`;
const per = (total: number, n: number): string => ((total / n) * 1000).toFixed(0);

/** A plan as a user gets it: record, analyse, simulate, render (scale 0: no timed run). */
const timePlan = async (opts: PlanOptions): Promise<{ ms: number; plan: PlanResult }> => {
    collectGarbage();
    const t0 = performance.now();
    const plan = await makePlan({ ...opts, scale: 0 });
    renderText(plan);
    JSON.stringify(planJson(plan));
    return { ms: performance.now() - t0, plan };
};

const FLOOR_PROGRAM = path.join(__dirname, "benchFloor");
const timeFloor = async (config: Record<string, unknown>, expected: number, sdkDebugAids = false): Promise<number> => {
    const sc = readStackConfig("dev");
    collectGarbage();
    const t0 = performance.now();
    const rec = await recordProgram({ config: { ...sc.config, ...config }, secretKeys: sc.secretKeys, program: FLOOR_PROGRAM, sdkDebugAids });
    if (rec.error || rec.registrations.length !== expected) throw new Error(`floor run: ${rec.error?.message ?? `${rec.registrations.length} registrations, expected ${expected}`}`);
    return performance.now() - t0;
};

/** The same number of bare resources (the component counts as one). */
const timeBare = (resources: number, sdkDebugAids = false) => timeFloor({ "phoenix:floorResources": resources }, resources, sdkDebugAids);

/** The plan's own resources, registered without the program. */
const timeReplay = (rec: Recording, file: string): Promise<number> => {
    const names = new Map(rec.registrations.map((r) => [r.urn, r.name]));
    const replay: ReplayResource[] = rec.registrations.map((r) => ({
        type: r.type,
        name: r.name,
        custom: r.custom,
        parent: names.get(r.parent),
        dependsOn: r.dependencies.map((d) => names.get(d)!).filter(Boolean),
        inputs: r.inputs,
    }));
    fs.writeFileSync(file, JSON.stringify(replay));
    return timeFloor({ "phoenix:floorReplay": file }, replay.length);
};

const repeat = async <T>(n: number, f: () => Promise<T>): Promise<T[]> => {
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(await f());
    return out;
};

interface Row {
    name: string;
    resources: number;
    planMs: number;
    replayMs: number;
    /** Bare resources as the SDK registers them by default (with its stack traces): "the SDK's own cost". */
    floorMs: number;
    /** Bare resources without stack traces, as the recorder runs everything. */
    floorNoTraceMs: number;
}

const verdict = (ok: boolean): string => (ok ? "met" : "MISSED");

const main = async (): Promise<void> => {
    const runs = Number(process.env.BENCH_RUNS ?? 5);
    console.log(`Phoenix plan benchmark: node ${process.version}, ${os.cpus().length} cpus, median of ${runs} runs (1000 guests: 1 run)`);
    await timePlan({}); // warm-up: module loading and the first compile belong to no plan
    await timeBare(50);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-bench-"));

    const rows: Row[] = [];
    const measure = async (name: string, opts: PlanOptions, n: number): Promise<PlanResult> => {
        const plans = await repeat(n, () => timePlan(opts));
        const resources = plans[0].plan.recorded.resources.length;
        const replays = await repeat(n, () => timeReplay(plans[0].plan.recording, path.join(scratch, "replay.json")));
        const floors = await repeat(n, () => timeBare(resources, true));
        const floorsNoTrace = await repeat(n, () => timeBare(resources));
        rows.push({ name, resources, planMs: median(plans.map((p) => p.ms)), replayMs: median(replays), floorMs: median(floors), floorNoTraceMs: median(floorsNoTrace) });
        return plans[0].plan;
    };

    const reference = await measure("reference selection (dev stack)", {}, runs);
    const syn100 = writeSyntheticCatalog({ guests: 100 });
    const syn1000 = writeSyntheticCatalog({ guests: 1000 });
    const syn200 = writeSyntheticCatalog({ guests: 200 });
    try {
        await measure("synthetic, 100 guests", { catalog: syn100.dir, guests: "all" }, runs);
        await measure("synthetic, 1000 guests", { catalog: syn1000.dir, guests: "all" }, 1);
        const big = (await timePlan({ catalog: syn200.dir, guests: "all" })).plan;

        console.log("\nPlan wall time (record + analyse + simulate + render), against the same resources replayed without the program,");
        console.log("and against as many bare resources (the SDK floor: as the SDK registers them by default, and without stack traces");
        console.log("as the recorder runs everything); same engine, same run");
        console.log(`  ${"plan".padEnd(34)} ${"resources".padStart(9)} ${"plan".padStart(9)} ${"replay".padStart(9)} ${"bare".padStart(9)} ${"bare-nt".padStart(9)}  plan/bare  plan/bare-nt  plan/replay  us per resource: plan / replay / bare / bare-nt`);
        for (const r of rows) {
            console.log(
                `  ${r.name.padEnd(34)} ${String(r.resources).padStart(9)} ${ms(r.planMs).padStart(9)} ${ms(r.replayMs).padStart(9)} ${ms(r.floorMs).padStart(9)} ${ms(r.floorNoTraceMs).padStart(9)}  ` +
                    `${(r.planMs / r.floorMs).toFixed(2).padStart(9)}  ${(r.planMs / r.floorNoTraceMs).toFixed(2).padStart(12)}  ${(r.planMs / r.replayMs).toFixed(2).padStart(11)}  ` +
                    `${per(r.planMs, r.resources)} / ${per(r.replayMs, r.resources)} / ${per(r.floorMs, r.resources)} / ${per(r.floorNoTraceMs, r.resources)}`,
            );
        }
        console.log(
            "  (bare resources have no output properties; the program's own resources, replayed without the program, already cost\n" +
                "   several times that without traces: a VmLegacy or ContainerLegacy carries dozens of Outputs, each with its promises)",
        );

        const sim = (name: string, p: PlanResult) => {
            const s = p.schedule;
            console.log(
                `  ${name.padEnd(34)} makespan ${String(s.makespan).padStart(6)} s, critical path ${String(s.criticalPath.seconds).padStart(6)} s, ` +
                    `serial ${String(s.serial).padStart(6)} s, speed-up ${(s.serial / s.makespan).toFixed(1)}x, lock waits ${s.lockWait} s`,
            );
        };
        console.log("\nSimulated pulumi up (model seconds, latency model)");
        sim("reference selection", reference);
        sim(`synthetic, 200 guests (${big.recorded.resources.length} res.)`, big);

        const timed = await makePlan({ scale: 1 });
        const measured = timed.measured!.makespan;
        console.log(
            `  reference under the SDK at 1 ms per model second: ${measured.toFixed(1)} s against ${timed.schedule.makespan} s analytic ` +
                `(${(((measured - timed.schedule.makespan) / timed.schedule.makespan) * 100).toFixed(1)} %, the SDK's own time per step)`,
        );

        const [, s100, s1000] = rows;
        const refS = reference.schedule;
        const bigS = big.schedule;
        const targets: [string, boolean, string][] = [
            ["reference makespan within 2 % of its critical path", refS.makespan <= refS.criticalPath.seconds * 1.02, `${refS.makespan} s vs ${refS.criticalPath.seconds} s`],
            ["reference at least 2.5x faster than serial", refS.serial / refS.makespan >= 2.5, `${(refS.serial / refS.makespan).toFixed(2)}x`],
            ["200-guest catalog at least 10x faster than serial", bigS.serial / bigS.makespan >= 10, `${(bigS.serial / bigS.makespan).toFixed(2)}x`],
            [
                "1000-guest plan at most 10x the 100-guest plan",
                s1000.planMs <= 10 * s100.planMs,
                `${(s1000.planMs / s100.planMs).toFixed(2)}x for ${(s1000.resources / s100.resources).toFixed(2)}x the resources (replayed alone: ${(s1000.replayMs / s100.replayMs).toFixed(2)}x)`,
            ],
            ...rows.map((r): [string, boolean, string] => [
                `${r.name}: plan within 1.3x the SDK floor (bare resources, SDK defaults)`,
                r.planMs <= 1.3 * r.floorMs,
                `${(r.planMs / r.floorMs).toFixed(2)}x (${per(r.planMs, r.resources)} vs ${per(r.floorMs, r.resources)} us/resource); ` +
                    `${(r.planMs / r.floorNoTraceMs).toFixed(2)}x the floor without traces; ${(r.planMs / r.replayMs).toFixed(2)}x its own resources replayed without the program`,
            ]),
        ];
        console.log("\nTargets");
        for (const [what, ok, figure] of targets) console.log(`  ${verdict(ok).padEnd(7)} ${what}: ${figure}`);
    } finally {
        [syn100, syn200, syn1000].forEach((c) => c.remove());
        fs.rmSync(scratch, { recursive: true, force: true });
    }
};

main().catch((e) => {
    console.error(`error: ${(e as Error).message}`);
    process.exitCode = 1;
});
