// The offline plan (npm run plan): what it reports for the reference selection, the simulated `pulumi up`, injected
// failures, catalog errors, and the pieces underneath (latency table, simulator, synthetic catalogs).
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "./helpers";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import { main, MAX_SCALE } from "../plan/cli";
import { DEPLOY_PARALLEL, type PlanResult, makePlan } from "../plan/plan";
import type { PlanStep } from "../plan/recorded";
import { BUNDLED_MODEL, DEFAULT_HEAVY_STEPS_PER_NODE, SHARED_MODEL, loadLatencyModel, stepCost } from "../plan/latency";
import { blockedBy, simulate } from "../plan/simulate";
import { syntheticGuests, writeSyntheticCatalog } from "../plan/synthetic";
import { recordProgram } from "../plan/engine";
import { readStackConfig } from "../plan/stackFile";

/**
 * The seed document's edges, but for the gateway: its health check checks every route end to end, so it waits for
 * Traefik and each route's target (1001, whose readiness covers 102 and 103) instead of 103 alone.
 */
const SEED_EDGES = ["1001-->102", "1001-->9000", "1002-->1001", "101-->1001", "102-->103", "103-->900"];

const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = "";
    let err = "";
    const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
};

interface JsonStep {
    name: string;
    role: string;
    seconds: number;
    start: number;
    end: number;
    awaits: string[];
    waits: { kind: string; guest: number; via: string[] }[];
}
interface JsonGuest {
    id: number;
    kind: string;
    name: string;
    dependsOn: number[];
    waitsFor: number[];
    cloneFrom: number | null;
    steps: JsonStep[];
}
interface JsonPlan {
    selection: { requested: number[]; pulledIn: { id: number; by: number; reason: string }[]; guests: { id: number; kind: string; why: string }[] };
    waves: number[][];
    guests: JsonGuest[];
    edges: { from: number; to: number; kinds: string[] }[];
    stepEdges: { from: number; to: number; via: string[] }[];
    simulation: {
        parallel: number | null;
        makespan: number;
        criticalPath: number;
        criticalSteps: string[];
        serial: number;
        lockWait: number;
        slotWait: number;
        makespans: { unlimited: number; deploy: { parallel: number; makespan: number } };
        measured: { makespan: number } | null;
    };
    failure?: {
        mode: "stop" | "continue-on-error";
        resource: string;
        guest: number;
        at: number;
        blocked: { guest: number; firstBlocked: string; waitsOn: string; steps: number }[];
        notStarted: { guest: number; firstNotStarted: string; wouldStartAt: number; steps: number }[];
        finished: { guest: number; at: number }[];
        settledAt: number;
        measured: { checks: string; agrees: boolean; neverStarted: number; waitsOnFailure: number };
    };
}

const jsonPlan = async (...args: string[]): Promise<JsonPlan> => {
    const r = await cli("--json", ...args);
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out) as JsonPlan;
};

const stepOf = (p: JsonPlan, name: string): JsonStep => {
    const s = p.guests.flatMap((g) => g.steps).find((x) => x.name === name);
    assert.ok(s, `no step ${name}`);
    return s;
};

/** Lifecycle stage of a role, in the order the issue lists them (steps on the node before the guest exists first). */
const STAGES: [RegExp, number][] = [
    [/^(os-template|image|vendor-data|host-dirs|subids)$/, 0], [/^(ct|vm)$/, 1], [/^(resize|lxc-conf)$/, 2], [/^fw-/, 3], [/^(start|wait)$/, 4],
    [/^snap-pre-configured$/, 5], [/^feature-/, 6], [/^app$/, 7], [/^health$/, 8], [/^snap-final-form$/, 9], [/^template$/, 10],
];
/** -1 for a step this list does not know (it is then not ordered by this test). */
const stage = (role: string): number => STAGES.find(([re]) => re.test(role))?.[1] ?? -1;

/**
 * The most steps (of those `which` picks) that worked at once in the plan's timed run: each step's own work is the last
 * `seconds` before the engine answered it, trimmed by `margin` model seconds of timer lateness at both ends.
 */
const mostAtOnce = (p: PlanResult, which: (r: PlanStep) => boolean, margin: number): number => {
    const events = p.recorded.resources
        .filter((r) => which(r) && r.seconds > 2 * margin && p.measured!.end.has(r.name))
        .flatMap((r) => {
            const end = p.measured!.end.get(r.name)!;
            return [[end - r.seconds + margin, 1], [end - margin, -1]] as [number, number][];
        })
        .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let working = 0;
    let most = 0;
    for (const [, d] of events) most = Math.max(most, (working += d));
    return most;
};

describe("plan: the reference selection (dev stack)", function () {
    let plan: JsonPlan;
    before(async () => {
        // A tiny scale keeps the run under the SDK short; the analytic figures do not depend on it.
        plan = await jsonPlan("--scale", "0.02");
    });

    it("reports the readiness waves of the seed document, the gateway last: it is ready once every route answers", () => {
        assert.deepEqual(plan.waves, [[900, 9000], [103], [102], [1001], [101, 1002]]);
    });

    it("reports the selection from the stack config, with each guest's kind", () => {
        const catalog = loadCatalog({ dir: "guests", node: "pve" });
        assert.deepEqual(plan.selection.requested, [900, 103, 101, 102, 9000, 1001, 1002]);
        assert.deepEqual(plan.selection.pulledIn, []);
        for (const g of plan.selection.guests) {
            assert.equal(g.kind, catalog.guests.get(g.id)!.kind, `kind of ${g.id}`);
            assert.equal(g.why, "requested");
        }
    });

    it("lists each guest's steps in lifecycle order, features in catalog order, dependencies first", () => {
        const catalog = loadCatalog({ dir: "guests", node: "pve" });
        for (const g of plan.guests) {
            const roles = g.steps.map((s) => s.role);
            const stages = roles.map(stage).filter((x) => x >= 0);
            assert.ok(stages.length >= 3, `${g.id}: ${roles.join(", ")}`);
            assert.deepEqual(stages, [...stages].sort((a, b) => a - b), `${g.id}: ${roles.join(", ")}`);
            const features = roles.filter((r) => r.startsWith("feature-")).map((r) => r.slice("feature-".length));
            assert.deepEqual(features, catalog.guests.get(g.id)!.features.map((f) => f.name), `${g.id} features`);
            const names = g.steps.map((s) => s.name);
            g.steps.forEach((s, i) => s.awaits.filter((a) => names.includes(a)).forEach((a) => assert.ok(names.indexOf(a) < i, `${s.name} listed before ${a}`)));
        }
        // The template container: created first, converted to a template last, its feature between start and conversion.
        const roles900 = plan.guests.find((g) => g.id === 900)!.steps.map((s) => s.role);
        assert.equal(roles900[0], "ct");
        assert.equal(roles900[roles900.length - 1], "template");
        assert.ok(roles900.indexOf("start") < roles900.indexOf("feature-base_setup"), roles900.join(", "));
        // And the application comes after the features, the health check after the application (103).
        const roles103 = plan.guests.find((g) => g.id === 103)!.steps.map((s) => s.role);
        assert.deepEqual(roles103.slice(roles103.indexOf("feature-step_ca"), roles103.indexOf("health") + 1), ["feature-step_ca", "app", "health"]);
    });

    it("shows where cross-guest edges attach: clone and lane at creation, the CA root at trusted_ca, readiness at the application", () => {
        const ct = stepOf(plan, "101-ct");
        assert.deepEqual(ct.waits.map((w) => `${w.kind}:${w.guest}`).sort(), ["clone:900", "lane:103"]);
        const trusted = stepOf(plan, "101-feature-trusted_ca");
        assert.deepEqual(trusted.waits, [{ kind: "ca", guest: 103, via: ["103-feature-step_ca"] }]);
        assert.deepEqual(stepOf(plan, "101-app").waits.map((w) => `${w.kind}:${w.guest}`), ["ready:103"]);
        // Nothing before the application waits for 103 to be ready.
        const g101 = plan.guests.find((g) => g.id === 101)!;
        const app = g101.steps.findIndex((s) => s.role === "app");
        for (const s of g101.steps.slice(0, app)) assert.ok(!s.waits.some((w) => w.kind === "ready"), s.name);
        // 1002's health check waits for 1001, whose readiness already covers 102 and 103.
        assert.deepEqual(stepOf(plan, "1002-health").waits.map((w) => `${w.kind}:${w.guest}`), ["ready:1001"]);
        // The routes: Traefik loads them once the gateway's application forwards their ACME challenges (that step,
        // not the gateway's readiness), and the gateway's health check waits for every route's guests (1001 covers 102).
        assert.deepEqual(stepOf(plan, "102-app").waits, [{ kind: "ready", guest: 103, via: ["103-health"] }, { kind: "step", guest: 101, via: ["101-app"] }]);
        assert.deepEqual(stepOf(plan, "101-health").waits, [{ kind: "ready", guest: 1001, via: ["1001-health"] }]);
        assert.deepEqual(stepOf(plan, "101-health").awaits.filter((a) => !a.startsWith("101")).sort(), ["1001-health", "102-health", "103-health"]);
        assert.deepEqual(plan.stepEdges, [{ from: 102, to: 101, via: ["101-app"] }]);
    });

    it("reports the guest edges of the seed document, with how each one arises", () => {
        const edges = new Map(plan.edges.map((e) => [`${e.from}-->${e.to}`, e.kinds]));
        assert.deepEqual([...edges.keys()].sort(), SEED_EDGES);
        assert.ok(edges.get("103-->900")!.includes("clone"));
        assert.ok(edges.get("1001-->9000")!.includes("clone"));
        assert.deepEqual(edges.get("102-->103")!.filter((k) => k !== "input"), ["ca", "ready"]);
        for (const e of ["1001-->102", "1002-->1001", "101-->1001"]) assert.ok(edges.get(e)!.includes("ready"), e);
        const g = (id: number) => plan.guests.find((x) => x.id === id)!;
        assert.deepEqual([g(101).cloneFrom, g(101).dependsOn], [900, [103]]);
        assert.deepEqual([g(1002).cloneFrom, g(1002).dependsOn], [9000, [1001]]);
        assert.deepEqual([g(900).cloneFrom, g(900).dependsOn], [null, []]);
    });

    it("reports each guest's dependsOn as the catalog declares it", () => {
        const catalog = loadCatalog({ dir: "guests", node: "pve" });
        const g = (id: number) => plan.guests.find((x) => x.id === id)!;
        assert.deepEqual(g(1001).dependsOn, [102]);
        assert.deepEqual(g(101).dependsOn, [103]);
        assert.deepEqual(g(900).dependsOn, []);
        for (const x of plan.guests) assert.deepEqual(x.dependsOn, [...catalog.guests.get(x.id)!.dependsOn].sort((a, b) => a - b), `${x.id}`);
    });

    it("simulates pulumi up: critical path <= makespan <= serial, the path a chain of real dependencies", () => {
        const sim = plan.simulation;
        const steps = plan.guests.flatMap((g) => g.steps);
        assert.equal(sim.serial, steps.reduce((n, s) => n + s.seconds, 0));
        assert.ok(sim.makespan <= sim.serial, `${sim.makespan} <= ${sim.serial}`);
        assert.ok(sim.makespan >= sim.criticalPath, `${sim.makespan} >= ${sim.criticalPath}`);
        assert.equal(sim.makespan, Math.max(...steps.map((s) => s.end)));
        const byLabel = new Map<string, JsonStep>(plan.guests.flatMap((g) => g.steps.map((s) => [`${g.id}:${s.role}`, s] as [string, JsonStep])));
        const chain = sim.criticalSteps.map((l) => byLabel.get(l)!);
        assert.ok(chain.every(Boolean), sim.criticalSteps.join(" "));
        chain.slice(1).forEach((s, i) => assert.ok(s.awaits.includes(chain[i].name), `${s.name} awaits ${chain[i].name}`));
        assert.equal(chain.reduce((n, s) => n + s.seconds, 0), sim.criticalPath);
        // Every step starts once everything it awaits has ended.
        const byName = new Map(steps.map((s) => [s.name, s]));
        let checked = 0;
        for (const s of steps) {
            for (const a of s.awaits.filter((x) => byName.has(x))) {
                assert.ok(s.start >= byName.get(a)!.end, `${s.name} starts at ${s.start}, before ${a} ends at ${byName.get(a)!.end}`);
                checked++;
            }
        }
        assert.ok(checked > steps.length);
    });

    it("ran the program under the SDK with the modelled latencies", () => {
        assert.ok(plan.simulation.measured && plan.simulation.measured.makespan > 0);
    });

    it("simulates unlimited parallelism by default, and reports the makespan at the deploy workflow's --parallel too", () => {
        assert.equal(plan.simulation.parallel, null);
        assert.equal(plan.simulation.slotWait, 0);
        assert.equal(plan.simulation.makespans.unlimited, plan.simulation.makespan);
        assert.equal(plan.simulation.makespans.deploy.parallel, DEPLOY_PARALLEL);
        const deploy = fs.readFileSync(path.join(ROOT, ".github", "workflows", "deploy.yml"), "utf8");
        assert.match(deploy, new RegExp(`pulumi up [^\\n]*--parallel ${DEPLOY_PARALLEL}\\b`), "the deploy workflow's --parallel");
    });
});

describe("plan: --parallel", () => {
    const at = async (...args: string[]) => (await jsonPlan("--scale", "0", ...args)).simulation;

    it("N=1 runs every step one after another: the makespan is the serial time", async () => {
        const sim = await at("--parallel", "1");
        assert.equal(sim.parallel, 1);
        assert.equal(sim.makespan, sim.serial);
    });

    it("a large N is unlimited parallelism; N=4 lies between, and is the figure the default plan shows for the deploy workflow", async () => {
        const unlimited = await at();
        const large = await at("--parallel", "1000");
        const four = await at("--parallel", "4");
        assert.equal(large.makespan, unlimited.makespan);
        assert.equal(large.slotWait, 0);
        assert.ok(unlimited.makespan < four.makespan && four.makespan < unlimited.serial, `${unlimited.makespan} < ${four.makespan} < ${unlimited.serial}`);
        assert.ok(four.slotWait > 0);
        assert.equal(four.criticalPath, unlimited.criticalPath);
        assert.equal(unlimited.makespans.deploy.makespan, four.makespan);
        assert.equal(four.makespans.unlimited, unlimited.makespan);
    });

    it("never has more than N resources with a duration in progress, and every step still starts after what it awaits", async () => {
        const p = await jsonPlan("--scale", "0", "--parallel", "4");
        const steps = p.guests.flatMap((g) => g.steps).filter((s) => s.seconds > 0);
        for (const s of steps) {
            const busy = steps.filter((x) => x.start <= s.start && s.start < x.end).length;
            assert.ok(busy <= 4, `${busy} in progress at ${s.start}`);
        }
        const byName = new Map(steps.map((s) => [s.name, s]));
        for (const s of steps) for (const a of s.awaits.filter((x) => byName.has(x))) assert.ok(s.start >= byName.get(a)!.end, `${s.name} after ${a}`);
        assert.equal(p.simulation.makespan, Math.max(...steps.map((s) => s.end)));
    });

    it("prints the chosen N's figures and both the unlimited and the deploy workflow's makespans", async () => {
        const unlimited = await at();
        const four = await at("--parallel", "4");
        const text = (await cli("--scale", "0")).out;
        assert.match(text, /Simulated pulumi up \(.*unlimited parallelism/);
        assert.ok(text.includes(`makespan at      unlimited ${unlimited.makespan} s, --parallel 4 (the deploy workflow) ${four.makespan} s`), text);
        const two = await cli("--scale", "0", "--parallel", "2");
        assert.match(two.out, /^Simulated pulumi up --parallel 2 /m);
        assert.match(two.out, /--parallel 2 \(this plan\) \d+ s/);
        assert.match(two.out, /^  slot waits +\d+ s/m);
    });

    it("the run under the SDK keeps to the same N: at most N modelled steps work at once", async () => {
        // Counted, not timed: each step's own work is the last `seconds` before the engine answered it (the slot and
        // lock waits come before). Timers fire late on a loaded machine, so each interval is trimmed by a margin at both
        // ends; without the slots, the dev stack has up to 7 steps working at once. How close the run's makespan stays
        // to the simulation's is a speed figure: the plan and the benchmark print it.
        const p = await makePlan({ scale: 2, parallel: 4 });
        const most = mostAtOnce(p, () => true, 5); // model seconds, 10 ms of timer lateness
        assert.ok(most <= 4, `${most} steps worked at once`);
        assert.ok(most >= 3, `${most}: the dev stack keeps several slots busy`);
    });
});

describe("plan: the run under the SDK keeps to the per-node limit", function () {
    it("at most concurrent_heavy_steps_per_node heavy steps work at once on a node (here 1)", async () => {
        // Counted as in the test above: each heavy step's own work is the last `seconds` before the engine answered it,
        // trimmed by 24 ms of timer lateness at both ends (one step follows another at once on the node).
        const model = loadLatencyModel();
        const p = await makePlan({ scale: 3, model: { ...model, limits: { ...model.limits, concurrent_heavy_steps_per_node: 1 } } });
        assert.deepEqual([...new Set(p.recorded.resources.filter((r) => r.heavy).map((r) => r.host))], ["phoenix"]);
        const most = mostAtOnce(p, (r) => r.heavy, 8);
        assert.equal(most, 1, `${most} heavy steps worked at once on the node`);
    });
});

describe("plan: flags", () => {
    it("--guests 101 pulls in 103 and 900 and says why", async () => {
        const p = await jsonPlan("--guests", "101", "--scale", "0");
        assert.deepEqual(p.selection.requested, [101]);
        assert.deepEqual(
            [...p.selection.pulledIn].sort((a, b) => a.id - b.id),
            [{ id: 103, by: 101, reason: "dependsOn" }, { id: 900, by: 101, reason: "cloneFrom" }],
        );
        assert.deepEqual(p.waves, [[900], [103], [101]]);
        assert.deepEqual(p.selection.guests.map((g) => [g.id, g.why]), [[900, "pulled in by 101 (cloneFrom)"], [103, "pulled in by 101 (dependsOn)"], [101, "requested"]]);
    });

    it("--mermaid prints the seed document's edges, dependent --> dependency, one node per guest", async () => {
        const r = await cli("--mermaid");
        assert.equal(r.code, 0, r.err);
        assert.match(r.out, /^graph TD\n/);
        const edges = [...r.out.matchAll(/^\s+(\d+) -->\|[^|]+\| (\d+)$/gm)].map((m) => `${m[1]}-->${m[2]}`).sort();
        assert.deepEqual(edges, SEED_EDGES);
        assert.match(r.out, /^\s+103\["103 Step-CA \(lxc\)"\]$/m);
        assert.match(r.out, /^\s+1001 -->\|[^|]*clone[^|]*\| 9000$/m);
        // A readiness wait the catalog does not declare, and a wait for one step of another guest (dotted).
        assert.match(r.out, /^ {2}101 -->\|ready\| 1001$/m);
        assert.match(r.out, /^ {2}102 -\.->\|101-app\| 101$/m);
    });

    it("prints the text plan with a mermaid block and no secret", async () => {
        const r = await cli("--scale", "0");
        assert.equal(r.code, 0, r.err);
        for (const section of ["Selection", "Readiness waves", "Steps per guest", "```mermaid", "Simulated pulumi up"]) assert.ok(r.out.includes(section), section);
        assert.match(r.out, /101-feature-trusted_ca .*takes 103's CA root/);
        assert.match(r.out, /101-app .*waits for 103 ready/);
        assert.doesNotMatch(r.out, /PRIVATE KEY|\[secret /);
    });

    const ids = (xs: { guest: number }[]) => xs.map((x) => x.guest).sort((a, b) => a - b);

    it("--fail 103:feature-step_ca --continue-on-error: 103 failed, every consumer of its CA blocked, the templates still finish", async () => {
        const p = await jsonPlan("--fail", "103:feature-step_ca", "--continue-on-error", "--scale", "0");
        const f = p.failure!;
        assert.equal(f.mode, "continue-on-error");
        assert.equal(f.resource, "103-feature-step_ca");
        assert.equal(f.guest, 103);
        assert.deepEqual(ids(f.blocked), [101, 102, 1001, 1002]);
        for (const b of f.blocked) assert.deepEqual([b.firstBlocked, b.waitsOn], [`${b.guest}-feature-trusted_ca`, "103-feature-step_ca"]);
        assert.deepEqual(f.notStarted, []);
        assert.deepEqual(ids(f.finished), [900, 9000]);
        // The run under the SDK never started exactly the resources the analysis calls blocked.
        assert.ok(f.measured.agrees);
        assert.ok(f.measured.neverStarted > 0);
    });

    it("--fail 103:feature-step_ca (a default pulumi up): what runs at 321 s finishes, nothing starts after it", async () => {
        const full = await jsonPlan("--scale", "0");
        const p = await jsonPlan("--fail", "103:feature-step_ca", "--scale", "0");
        const f = p.failure!;
        assert.equal(f.mode, "stop");
        assert.equal(f.at, stepOf(full, "103-feature-step_ca").end);
        // 101, 102 and 1001 reach their CA step only after the failure: they wait on it.
        assert.deepEqual(ids(f.blocked), [101, 102, 1001]);
        for (const b of f.blocked) assert.deepEqual([b.firstBlocked, b.waitsOn], [`${b.guest}-feature-trusted_ca`, "103-feature-step_ca"]);
        // 1002 never waits on 103's CA before its trusted_ca step, but the run stops before its base_setup starts.
        assert.deepEqual(f.notStarted.map((x) => [x.guest, x.firstNotStarted, x.wouldStartAt]), [[1002, "1002-feature-base_setup", stepOf(full, "1002-feature-base_setup").start]]);
        assert.ok(stepOf(full, "1002-feature-nfs_volumes").start < f.at, "1002's step in progress at the failure");
        assert.deepEqual(ids(f.finished), [900, 9000]);
        // The steps running at the failure finish: 1001's base_setup is the last.
        assert.equal(f.settledAt, stepOf(full, "1001-feature-base_setup").end);
        // The run under the SDK has no step scheduler: it checks what waits on the failure, the same in both modes.
        assert.equal(f.measured.checks, "waits-on-failure");
        assert.ok(f.measured.agrees);
    });

    it("--fail 900:ct: a default pulumi up stops before 9000's VM (120 s > 40 s); --continue-on-error finishes 9000", async () => {
        const full = await jsonPlan("--scale", "0");
        const stop = (await jsonPlan("--fail", "900:ct", "--scale", "0")).failure!;
        assert.equal(stop.at, 40);
        assert.ok(!stop.finished.some((x) => x.guest === 9000), JSON.stringify(stop.finished));
        assert.deepEqual(stop.finished, []);
        assert.deepEqual(ids(stop.blocked), [101, 102, 103]);
        assert.deepEqual(ids(stop.notStarted), [1001, 1002, 9000]);
        const vm = stop.notStarted.find((x) => x.guest === 9000)!;
        assert.deepEqual([vm.firstNotStarted, vm.wouldStartAt, vm.steps], ["9000-vm", stepOf(full, "9000-vm").start, 1]);
        assert.ok(vm.wouldStartAt > stop.at);
        // 9000's image download was running at 40 s: it finishes.
        assert.equal(stop.settledAt, stepOf(full, "9000-image").end);

        const cont = (await jsonPlan("--fail", "900:ct", "--continue-on-error", "--scale", "0")).failure!;
        assert.equal(cont.mode, "continue-on-error");
        assert.deepEqual(cont.finished, [{ guest: 9000, at: stepOf(full, "9000-vm").end }]);
        assert.deepEqual(ids(cont.blocked), [101, 102, 103, 1001, 1002]);
        assert.deepEqual(cont.notStarted, []);
        // Both modes agree on what waits on the failure.
        assert.equal(cont.measured.waitsOnFailure, stop.measured.waitsOnFailure);
    });

    it("says which semantics the failure report shows", async () => {
        const stop = await cli("--fail", "900:ct", "--scale", "0");
        assert.match(stop.out, /^  as a default pulumi up: steps already running at the failure finish, nothing starts after it/m);
        assert.match(stop.out, /^  not started  9000  1 step never runs, from 9000-vm \(would start at 120 s; the run stopped at 40 s\)$/m);
        assert.match(stop.out, /^  finished     \(none\)$/m);
        const cont = await cli("--fail", "900:ct", "--continue-on-error", "--scale", "0");
        assert.match(cont.out, /^  as pulumi up --continue-on-error: everything that does not wait on the failure still runs/m);
        assert.match(cont.out, /^  finished     9000 \(ready at 180 s\)$/m);
        assert.doesNotMatch(cont.out, /not started/);
    });

    it("--fail under --parallel: the failure time and who finishes follow the limited schedule", async () => {
        const full = await jsonPlan("--scale", "0", "--parallel", "4");
        const f = (await jsonPlan("--fail", "103:feature-step_ca", "--scale", "0", "--parallel", "4")).failure!;
        assert.equal(f.at, stepOf(full, "103-feature-step_ca").end);
        const started = full.guests.flatMap((g) => g.steps).filter((s) => s.start < f.at);
        assert.equal(f.settledAt, Math.max(...started.map((s) => s.end)));
        for (const x of f.notStarted) assert.ok(x.wouldStartAt >= f.at, `${x.firstNotStarted} at ${x.wouldStartAt}`);
    });

    it("rejects unknown flags and bad values with usage and exit code 2", async () => {
        const bad = [
            ["--bogus"], ["--guests", "1o1"], ["--fail", "103"], ["--json", "--mermaid"], ["--scale"],
            ["--catalog="], ["--catalog", ""], ["--catalog", "  "],
            ["--scale", String(MAX_SCALE + 1)], ["--scale=1000"],
            ["--parallel", "0"], ["--parallel", "-1"], ["--parallel", "1.5"], ["--parallel", "four"], ["--parallel="], ["--parallel"],
            ["--continue-on-error"], ["--continue-on-error=yes", "--fail", "103:app"],
        ];
        for (const args of bad) {
            const r = await cli(...args);
            assert.equal(r.code, 2, args.join(" "));
            assert.match(r.err, /^error: .*\n\nUsage: npm run plan/, args.join(" "));
            assert.equal(r.out, "");
        }
        const r = await cli("--fail", "103:nope", "--scale", "0");
        assert.equal(r.code, 2);
        assert.match(r.err, /^error: --fail 103:nope: guest 103 has no step nope \(steps: host-dirs, ct, /);
    });
});

describe("plan: dependsOn against readiness waits", function () {
    let dir: string;
    before(() => {
        // 1001's docker feature also waits for 101 (a feature's `after`): a readiness wait, not a catalog dependsOn.
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-plan-after-"));
        for (const f of fs.readdirSync(path.join(ROOT, "guests"))) fs.copyFileSync(path.join(ROOT, "guests", f), path.join(dir, f));
        // 1002, not 1001: the gateway's health check waits for 1001 (a route's target), which must not wait for it.
        const file = path.join(dir, "1002-drphoenix.yaml");
        const yaml = fs.readFileSync(file, "utf8");
        assert.ok(yaml.includes("\n  - docker\n"));
        fs.writeFileSync(file, yaml.replace("\n  - docker\n", "\n  - { name: docker, after: [101] }\n"));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("dependsOn stays the catalog's; waitsFor shows every guest whose readiness a step waits for", async () => {
        const p = await jsonPlan("--catalog", dir, "--scale", "0");
        const g1002 = p.guests.find((g) => g.id === 1002)!;
        assert.deepEqual(g1002.dependsOn, [1001]);
        assert.deepEqual(g1002.waitsFor, [101]);
        assert.deepEqual(p.guests.find((g) => g.id === 101)!.dependsOn, [103]);
        assert.deepEqual(p.guests.find((g) => g.id === 900)!.dependsOn, []);
    });
});

describe("plan: catalog errors", function () {
    this.timeout(60000);
    let dir: string;
    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-plan-broken-"));
        fs.copyFileSync(path.join(ROOT, "guests", "defaults.yaml"), path.join(dir, "defaults.yaml"));
        fs.writeFileSync(path.join(dir, "300-broken.yaml"), "kind: lxc\nid: 300\nname: broken\ncores: many\nmemoryMb: 512\ndiskGb: 4\nnetwork:\n  ip: 10.0.0.300/24\n");
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("prints them exactly as under pulumi up, without a stack trace, and exits 1", () => {
        const r = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "plan/cli.ts", "--catalog", dir, "--guests", "300"], {
            cwd: ROOT,
            encoding: "utf8",
            env: { ...process.env, TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json") },
        });
        let expected = "";
        try {
            loadCatalog({ dir, node: "phoenix" });
        } catch (e) {
            assert.ok(e instanceof CatalogError);
            expected = e.message;
        }
        assert.match(expected, /300-broken\.yaml:4:\d+ cores: /);
        assert.match(expected, /300-broken\.yaml:8:\d+ network\.ip: /);
        assert.equal(r.stderr, `error: ${expected}\n`);
        assert.equal(r.stdout, "");
        assert.equal(r.status, 1);
    });
});

describe("plan: latency model and simulator", () => {
    const model = loadLatencyModel();

    it("costs each recorded step from the latency model's table", () => {
        const cost = (type: string, role: string, kind: "lxc" | "vm", clone = false) => stepCost(model, { type, role, kind, custom: true, clone });
        const CT = "proxmoxve:index/containerLegacy:ContainerLegacy";
        const VM = "proxmoxve:index/vmLegacy:VmLegacy";
        const CMD = "command:remote:Command";
        assert.equal(cost(CT, "ct", "lxc").seconds, model.lxc.create_from_os_template);
        assert.equal(cost(CT, "ct", "lxc", true).seconds, model.lxc.clone);
        assert.equal(cost(VM, "vm", "vm").seconds, model.vm.create_template_from_image);
        assert.equal(cost(VM, "vm", "vm", true).seconds, model.vm.clone);
        assert.equal(cost("proxmoxve:download/file:File", "image", "vm").seconds, model.vm.download_cloud_image);
        assert.equal(cost(CMD, "wait", "vm").seconds, model.vm.start_and_wait_agent);
        assert.equal(cost(CMD, "start", "lxc").seconds, model.lxc.start);
        assert.equal(cost("proxmoxve:firewall/rulesLegacy:RulesLegacy", "fw-rules", "vm").seconds, model.vm.configure);
        assert.equal(cost(CMD, "snap-final-form", "lxc").seconds, model.guest.snapshot);
        assert.equal(cost(CMD, "feature-docker", "vm").seconds, model.guest.feature.docker);
        assert.equal(cost(CMD, "feature-step_cli-2", "vm").seconds, model.guest.feature.step_cli);
        assert.deepEqual(cost(CMD, "feature-made_up", "vm"), { what: "feature made_up", seconds: model.guest.feature.default, figure: "guest.feature.default", heavy: true });
        // Heavy on their node: disk copies, downloads, feature scripts; not the rest.
        const heavy = (type: string, role: string, kind: "lxc" | "vm", clone = false) => cost(type, role, kind, clone).heavy;
        assert.deepEqual([heavy(CT, "ct", "lxc"), heavy(CT, "ct", "lxc", true), heavy(VM, "vm", "vm"), heavy(VM, "vm", "vm", true), heavy("proxmoxve:download/file:File", "image", "vm"), heavy(CMD, "feature-docker", "vm")], [true, true, true, true, true, true]);
        assert.deepEqual([heavy(CMD, "app", "lxc"), heavy(CMD, "health", "lxc"), heavy(CMD, "wait", "vm"), heavy(CMD, "snap-final-form", "lxc"), heavy(CMD, "fw-reset", "lxc")], [false, false, false, false, false]);
        assert.deepEqual(cost("proxmoxve:index/haresource:Haresource", "ha", "lxc"), { what: "put under HA", seconds: model.lxc.configure, figure: "lxc.configure", heavy: false });
        assert.equal(cost("proxmoxve:index/fileLegacy:FileLegacy", "vendor-data-pve3", "vm").what, "configure (vendor-data on pve3)");
        assert.equal(cost(CMD, "app", "lxc").seconds, model.guest.application_script);
        assert.equal(cost(CMD, "health", "lxc").seconds, model.guest.health_check);
        assert.equal(cost(CMD, "template", "lxc").seconds, model.lxc.convert_to_template);
        assert.equal(stepCost(model, { type: "phoenix:index:LxcGuest", role: "103", custom: false, clone: false }).seconds, 0);
        assert.match(cost(CMD, "something-new", "lxc").what, /unmodelled/);
    });

    it("keeps the bundled latency model identical to the shared one, but for a per-node limit equal to the default", function () {
        if (!fs.existsSync(SHARED_MODEL)) this.skip();
        const { source: _a, hostLimitFrom: sharedFrom, ...shared } = loadLatencyModel(SHARED_MODEL);
        const { source: _b, hostLimitFrom: bundledFrom, ...bundled } = loadLatencyModel(BUNDLED_MODEL);
        assert.deepEqual(bundled, shared);
        assert.equal(bundledFrom, "model");
        assert.equal(bundled.limits.concurrent_heavy_steps_per_node, DEFAULT_HEAVY_STEPS_PER_NODE, "a fresh clone plans exactly as a checkout beside the shared model");
        if (sharedFrom === "model") assert.equal(shared.limits.concurrent_heavy_steps_per_node, DEFAULT_HEAVY_STEPS_PER_NODE);
    });

    it("reads the per-node limit from the model, with the default when it has none, and refuses a bad one", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-model-"));
        try {
            const text = fs.readFileSync(BUNDLED_MODEL, "utf8");
            const write = (t: string) => (fs.writeFileSync(path.join(dir, "m.yaml"), t), path.join(dir, "m.yaml"));
            const without = loadLatencyModel(write(text.replace(/^ {2}concurrent_heavy_steps_per_node: .*$/m, "")));
            assert.deepEqual([without.limits.concurrent_heavy_steps_per_node, without.hostLimitFrom], [DEFAULT_HEAVY_STEPS_PER_NODE, "default"]);
            const two = loadLatencyModel(write(text.replace(/concurrent_heavy_steps_per_node: 4/, "concurrent_heavy_steps_per_node: 2")));
            assert.deepEqual([two.limits.concurrent_heavy_steps_per_node, two.hostLimitFrom], [2, "model"]);
            assert.throws(() => loadLatencyModel(write(text.replace(/concurrent_heavy_steps_per_node: 4/, "concurrent_heavy_steps_per_node: 0"))), /limits\.concurrent_heavy_steps_per_node must be a positive integer \(got 0\)/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("runs at most the per-node limit of heavy steps on one Proxmox node; other nodes and light steps are not held", () => {
        const heavy = (name: string, host: string, seconds = 10) => ({ name, seconds, awaits: [], host, heavy: true });
        const nodes = [heavy("a1", "pve1"), heavy("a2", "pve1"), heavy("a3", "pve1"), heavy("b1", "pve2"), { name: "light", seconds: 10, awaits: [], host: "pve1" }];
        const s = simulate(nodes, 1, Infinity, 2);
        assert.deepEqual(["a1", "a2", "a3", "b1", "light"].map((n) => s.start.get(n)), [0, 0, 10, 0, 0]);
        assert.deepEqual([s.makespan, s.hostWait, s.hostLimit], [20, 10, 2]);
        assert.deepEqual([...s.hosts], [["pve1", { end: 20, hostWait: 10 }], ["pve2", { end: 10, hostWait: 0 }]]);
        assert.equal(simulate(nodes).makespan, 10, "unlimited by default");
        assert.throws(() => simulate(nodes, 1, Infinity, 0), /per-node limit must be at least 1/);
        // A clone waits for its source's lock first, then for its node.
        const clones = [heavy("c1", "pve1"), { ...heavy("c2", "pve1"), lock: "900" }, { ...heavy("c3", "pve1"), lock: "900" }];
        const c = simulate(clones, 1, Infinity, 2);
        assert.deepEqual(["c1", "c2", "c3"].map((n) => c.start.get(n)), [0, 0, 10]);
        assert.deepEqual([c.lockWait, c.hostWait], [10, 0]);
    });

    it("holds a clone source's lock for the whole clone: two clones ready together run one after the other", () => {
        const nodes = [
            { name: "src", seconds: 10, awaits: [] },
            { name: "a", seconds: 20, awaits: ["src"], lock: "src" },
            { name: "b", seconds: 20, awaits: ["src"], lock: "src" },
            { name: "after-b", seconds: 5, awaits: ["b"] },
        ];
        const s = simulate(nodes, 1);
        assert.deepEqual([s.start.get("a"), s.start.get("b"), s.end.get("after-b")], [10, 30, 55]);
        assert.equal(s.makespan, 55);
        assert.equal(s.lockWait, 20);
        // The longest chain of dependencies alone; the lock wait is what the makespan adds on top.
        assert.deepEqual(s.criticalPath, { seconds: 35, steps: ["src", "b", "after-b"] });
        assert.equal(s.serial, 55);
        assert.equal(simulate(nodes, 2).makespan, 35);
    });

    it("blocks exactly what transitively awaits a failure", () => {
        const nodes = [
            { name: "a", seconds: 1, awaits: [] },
            { name: "b", seconds: 1, awaits: ["a"] },
            { name: "c", seconds: 1, awaits: ["b"] },
            { name: "d", seconds: 1, awaits: ["a"] },
            { name: "e", seconds: 1, awaits: ["c", "d"] },
        ];
        assert.deepEqual([...blockedBy(nodes, "b")].sort(), ["c", "e"]);
        assert.deepEqual([...blockedBy(nodes, "e")], []);
    });

    it("--parallel: at most N resources with a duration at once, zero-duration ones free, the earliest ready first", () => {
        const nodes = [
            { name: "comp", seconds: 0, awaits: [] },
            { name: "a", seconds: 10, awaits: ["comp"] },
            { name: "b", seconds: 30, awaits: ["comp"] },
            { name: "c", seconds: 5, awaits: ["a"] },
            { name: "d", seconds: 20, awaits: [] },
            { name: "e", seconds: 1, awaits: ["b", "c", "d"] },
        ];
        const serial = 66;
        assert.equal(simulate(nodes, 1, 1).makespan, serial);
        assert.equal(simulate(nodes, 1, 100).makespan, simulate(nodes).makespan);
        assert.equal(simulate(nodes).makespan, 31);
        // Two slots: a and b start at 0 (ready at 0 like d, but given first; comp takes no slot). When a ends at 10,
        // d (ready since 0) goes before c (ready since 10); c gets b's slot at 30.
        const two = simulate(nodes, 1, 2);
        assert.deepEqual(["a", "b", "c", "d", "e"].map((n) => [two.start.get(n), two.end.get(n)]), [[0, 10], [0, 30], [30, 35], [10, 30], [35, 36]]);
        assert.equal(two.slotWait, 10 + 20);
        assert.ok(two.makespan > 31 && two.makespan < serial);
        assert.equal(two.criticalPath.seconds, simulate(nodes).criticalPath.seconds);
        assert.throws(() => simulate(nodes, 1, 0), /parallel must be at least 1/);
    });

    it("--parallel: a clone waiting for its source's lock holds its slot (the provider waits for Proxmox)", () => {
        const nodes = [
            { name: "src", seconds: 10, awaits: [] },
            { name: "a", seconds: 20, awaits: ["src"], lock: "src" },
            { name: "b", seconds: 20, awaits: ["src"], lock: "src" },
            { name: "x", seconds: 5, awaits: ["src"] },
        ];
        const s = simulate(nodes, 1, 2);
        // a and b both start at 10; b waits for a's lock until 30 in its slot, so x only starts when a is done.
        assert.deepEqual([s.sent.get("b"), s.start.get("b"), s.start.get("x")], [10, 30, 30]);
        assert.equal(s.lockWait, 20);
        assert.equal(s.makespan, 50);
    });

    it("reports a dependency cycle instead of hanging", () => {
        assert.throws(() => simulate([{ name: "x", seconds: 1, awaits: ["y"] }, { name: "y", seconds: 1, awaits: ["x"] }]), /dependency cycle among x, y/);
    });
});

describe("plan: synthetic catalogs", () => {
    it("are deterministic, valid, and shaped as asked: templates, even clone spread, layered dependencies", () => {
        const files = syntheticGuests({ guests: 200 });
        assert.deepEqual(syntheticGuests({ guests: 200 }), files);
        const guests = [...files.values()] as any[];
        assert.equal(guests.length, 200);
        const templates = guests.filter((g) => g.template);
        assert.deepEqual(templates.map((g) => `${g.kind}:${g.id}`), ["lxc:900", "lxc:901", "vm:9000", "vm:9001"]);
        const clones = guests.filter((g) => !g.template);
        for (const t of templates) assert.equal(clones.filter((c) => c.cloneFrom === t.id).length, 49, `clones of ${t.id}`);
        for (const c of clones) {
            assert.ok((c.dependsOn ?? []).length <= 2);
            assert.equal(c.features.length, 2);
            assert.equal(c.features[0], "base_setup");
        }
        const ips = guests.map((g) => g.network.ip).filter((ip) => ip !== "dhcp");
        assert.equal(new Set(ips).size, ips.length);
        const macs = guests.map((g) => g.network.mac).filter(Boolean);
        assert.equal(new Set(macs).size, macs.length);

        const written = writeSyntheticCatalog({ guests: 200 });
        try {
            const catalog = loadCatalog({ dir: written.dir, node: "pve" });
            assert.equal(catalog.guests.size, 200);
        } finally {
            written.remove();
        }
    });
});

describe("plan: the recorder (plan/engine.ts)", () => {
    const debuggable = require("@pulumi/pulumi/runtime/debuggable") as { debuggablePromise: unknown };
    const pulumiResource = require("@pulumi/pulumi").Resource as { callsites: unknown };
    const indexPath = require.resolve(path.join(ROOT, "index"));

    it("switches the SDK's debugging aids off only while the program runs, and puts everything back", async () => {
        const before = { debuggablePromise: debuggable.debuggablePromise, callsites: pulumiResource.callsites, limit: Error.stackTraceLimit, prepare: Error.prepareStackTrace };
        let during: { debuggablePromise: unknown; limit: number } | undefined;
        const sc = readStackConfig("dev");
        const rec = await recordProgram({
            config: sc.config,
            secretKeys: sc.secretKeys,
            latency: () => {
                during ??= { debuggablePromise: debuggable.debuggablePromise, limit: Error.stackTraceLimit };
                return 0;
            },
        });
        assert.equal(rec.error, undefined);
        assert.ok(during && during.debuggablePromise !== before.debuggablePromise && during.limit === 0, "off while the program runs");
        assert.equal(debuggable.debuggablePromise, before.debuggablePromise);
        assert.equal(pulumiResource.callsites, before.callsites);
        assert.equal(Error.stackTraceLimit, before.limit);
        assert.equal(Error.prepareStackTrace, before.prepare);
    });

    it("keeps them on when asked (sdkDebugAids), as the benchmark's SDK floor does", async () => {
        const original = debuggable.debuggablePromise;
        let during: unknown;
        const sc = readStackConfig("dev");
        await recordProgram({ config: sc.config, secretKeys: sc.secretKeys, sdkDebugAids: true, latency: () => ((during ??= debuggable.debuggablePromise), 0) });
        assert.equal(during, original);
    });

    it("a catalog error still reads in full with the aids off", async () => {
        const sc = readStackConfig("dev");
        const rec = await recordProgram({ config: { ...sc.config, "phoenix:catalog": "no-such-catalog" }, secretKeys: sc.secretKeys });
        assert.match(rec.error?.message ?? "", /no-such-catalog:1:1 \(catalog\): catalog directory not found/);
    });

    it("unloads the program after each run: nothing keeps it loaded, as a child or as a parent, so a run keeps no other alive", async () => {
        const sc = readStackConfig("dev");
        for (let run = 0; run < 2; run++) {
            const rec = await recordProgram({ config: sc.config, secretKeys: sc.secretKeys });
            assert.equal(rec.error, undefined);
            assert.ok(rec.registrations.length > 0, "the program ran (again)");
            assert.equal(require.cache[indexPath], undefined);
            for (const m of Object.values(require.cache)) {
                assert.ok(!m?.children.some((c) => c.id === indexPath), `${m?.id} still lists the program as a child`);
                assert.notEqual(m?.parent?.id, indexPath, `${m?.id} still names the program as its parent`);
            }
        }
    });

    it("resolves the program's outputs in their own key order while letting go of each value once resolved", async () => {
        const sc = readStackConfig("dev");
        const rec = await recordProgram({ config: sc.config, secretKeys: sc.secretKeys });
        assert.deepEqual(Object.keys(rec.outputs!), ["selection", "guests", "routes"]);
        assert.deepEqual(Object.keys((rec.outputs as any).guests), ["101", "102", "103", "900", "1001", "1002", "9000"]);
        assert.deepEqual(Object.keys((rec.outputs as any).guests["103"]), ["kind", "dependsOn", "vmId", "ip", "node", "ready"]);
        assert.equal((rec.outputs as any).guests["103"].vmId, 103);
    });

});
