// The offline plan (npm run plan): what it reports for the reference selection, the simulated `pulumi up`, injected
// failures, catalog errors, and the pieces underneath (latency table, simulator, synthetic catalogs).
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import { main } from "../plan/cli";
import { BUNDLED_MODEL, SHARED_MODEL, loadLatencyModel, stepCost } from "../plan/latency";
import { blockedBy, simulate } from "../plan/simulate";
import { syntheticGuests, writeSyntheticCatalog } from "../plan/synthetic";

const ROOT = path.resolve(__dirname, "..");
const SEED_EDGES = ["1001-->102", "1001-->9000", "1002-->1001", "101-->103", "102-->103", "103-->900"];

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
    cloneFrom: number | null;
    steps: JsonStep[];
}
interface JsonPlan {
    selection: { requested: number[]; pulledIn: { id: number; by: number; reason: string }[]; guests: { id: number; kind: string; why: string }[] };
    waves: number[][];
    guests: JsonGuest[];
    edges: { from: number; to: number; kinds: string[] }[];
    simulation: { makespan: number; criticalPath: number; criticalSteps: string[]; serial: number; lockWait: number; measured: { makespan: number } | null };
    failure?: {
        resource: string;
        guest: number;
        blocked: { guest: number; firstBlocked: string; waitsOn: string }[];
        finished: { guest: number; at: number }[];
        measured: { agrees: boolean; neverStarted: number };
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
    [/^(os-template|image|vendor-data|host-dirs|subids)$/, 0], [/^(ct|vm)$/, 1], [/^lxc-conf$/, 2], [/^fw-/, 3], [/^(start|wait)$/, 4],
    [/^snap-pre-configured$/, 5], [/^feature-/, 6], [/^app$/, 7], [/^health$/, 8], [/^snap-final-form$/, 9], [/^template$/, 10],
];
/** -1 for a step this list does not know (it is then not ordered by this test). */
const stage = (role: string): number => STAGES.find(([re]) => re.test(role))?.[1] ?? -1;

describe("plan: the reference selection (dev stack)", function () {
    let plan: JsonPlan;
    before(async () => {
        // A tiny scale keeps the run under the SDK short; the analytic figures do not depend on it.
        plan = await jsonPlan("--scale", "0.02");
    });

    it("reports the readiness waves of the seed document", () => {
        assert.deepEqual(plan.waves, [[900, 9000], [103], [101, 102], [1001], [1002]]);
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
    });

    it("reports the guest edges of the seed document, with how each one arises", () => {
        const edges = new Map(plan.edges.map((e) => [`${e.from}-->${e.to}`, e.kinds]));
        assert.deepEqual([...edges.keys()].sort(), SEED_EDGES);
        assert.ok(edges.get("103-->900")!.includes("clone"));
        assert.ok(edges.get("1001-->9000")!.includes("clone"));
        for (const e of ["101-->103", "102-->103"]) assert.deepEqual(edges.get(e)!.filter((k) => k !== "input"), ["ca", "ready"], e);
        for (const e of ["1001-->102", "1002-->1001"]) assert.ok(edges.get(e)!.includes("ready"), e);
        const g = (id: number) => plan.guests.find((x) => x.id === id)!;
        assert.deepEqual([g(101).cloneFrom, g(101).dependsOn], [900, [103]]);
        assert.deepEqual([g(1002).cloneFrom, g(1002).dependsOn], [9000, [1001]]);
        assert.deepEqual([g(900).cloneFrom, g(900).dependsOn], [null, []]);
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
    });

    it("prints the text plan with a mermaid block and no secret", async () => {
        const r = await cli("--scale", "0");
        assert.equal(r.code, 0, r.err);
        for (const section of ["Selection", "Readiness waves", "Steps per guest", "```mermaid", "Simulated pulumi up"]) assert.ok(r.out.includes(section), section);
        assert.match(r.out, /101-feature-trusted_ca .*takes 103's CA root/);
        assert.match(r.out, /101-app .*waits for 103 ready/);
        assert.doesNotMatch(r.out, /PRIVATE KEY|\[secret /);
    });

    it("--fail 103:feature-step_ca: 103 failed, every consumer of its CA blocked, the templates still finish", async () => {
        const p = await jsonPlan("--fail", "103:feature-step_ca", "--scale", "0");
        const f = p.failure!;
        assert.equal(f.resource, "103-feature-step_ca");
        assert.equal(f.guest, 103);
        assert.deepEqual(f.blocked.map((b) => b.guest).sort((a, b) => a - b), [101, 102, 1001, 1002]);
        for (const b of f.blocked) assert.deepEqual([b.firstBlocked, b.waitsOn], [`${b.guest}-feature-trusted_ca`, "103-feature-step_ca"]);
        assert.deepEqual(f.finished.map((x) => x.guest).sort((a, b) => a - b), [900, 9000]);
        // The run under the SDK never started exactly the resources the analysis calls blocked.
        assert.ok(f.measured.agrees);
        assert.ok(f.measured.neverStarted > 0);
    });

    it("rejects unknown flags and bad values with usage and exit code 2", async () => {
        for (const args of [["--bogus"], ["--guests", "1o1"], ["--fail", "103"], ["--json", "--mermaid"], ["--scale"]]) {
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
        assert.deepEqual(cost(CMD, "feature-made_up", "vm"), { what: "feature made_up", seconds: model.guest.feature.default, figure: "guest.feature.default" });
        assert.equal(cost(CMD, "app", "lxc").seconds, model.guest.application_script);
        assert.equal(cost(CMD, "health", "lxc").seconds, model.guest.health_check);
        assert.equal(cost(CMD, "template", "lxc").seconds, model.lxc.convert_to_template);
        assert.equal(stepCost(model, { type: "phoenix:index:LxcGuest", role: "103", custom: false, clone: false }).seconds, 0);
        assert.match(cost(CMD, "something-new", "lxc").what, /unmodelled/);
    });

    it("keeps the bundled latency model identical to the shared one", function () {
        if (!fs.existsSync(SHARED_MODEL)) this.skip();
        const { source: _a, ...shared } = loadLatencyModel(SHARED_MODEL);
        const { source: _b, ...bundled } = loadLatencyModel(BUNDLED_MODEL);
        assert.deepEqual(bundled, shared);
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
