// GPU memory shares: the lanes that keep servers which would not fit on one GPU apart (catalog/gpuShares.ts), the
// script headers they are read from, and the importer's repair of an original that overfilled a GPU for good.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { makePlan } from "../plan/plan";
import { type GpuServer, gpuLanes, orderWithLanes } from "../catalog/gpuShares";
import { ScriptLibrary } from "../catalog/scripts";
import { importPhoenix } from "../tools/phoenix/importer";
import { ROOT, editedOriginal, importCli } from "./helpers";

const server = (guest: number, share: number, template: boolean, gpus = [0]): GpuServer =>
    ({ guest, node: "pve", gpus, share, stated: true, template, feature: "vllm", featureIndex: 0 });
const never = (_a: number, _b: number) => false;
const lanes = (servers: GpuServer[], dependsOn = never, clonedFrom = never) =>
    gpuLanes(servers, servers.map((s) => s.guest), dependsOn, clonedFrom);

describe("GPU lanes (catalog/gpuShares.ts)", () => {
    it("leaves servers that fit together alone", () => {
        const plan = lanes([server(1, 0.3, true), server(2, 0.3, true), server(3, 0.4, false)]);
        assert.deepEqual([plan.lanes, [...plan.waits]], [[], []]);
    });

    it("runs templates one after another when their shares exceed the GPU, and lets permanent servers that fit beside any one of them start", () => {
        const plan = lanes([server(1, 0.6, true), server(2, 0.6, true), server(3, 0.6, true), server(9, 0.3, false)]);
        assert.deepEqual(plan.lanes, [{ node: "pve", gpu: 0, templates: [1, 2, 3], chained: true, permanent: [9], afterTemplates: false }]);
        assert.deepEqual([...plan.waits], [[2, [1]], [3, [2]]]);
    });

    it("starts permanent servers after the templates when a running template would not fit beside them (after the chain's last, which implies the rest)", () => {
        const unchained = lanes([server(1, 0.3, true), server(2, 0.3, true), server(9, 0.5, false)]);
        assert.deepEqual([...unchained.waits], [[9, [1, 2]]]);
        const chained = lanes([server(1, 0.6, true), server(2, 0.6, true), server(8, 0.5, false), server(9, 0.45, false)]);
        assert.deepEqual([...chained.waits], [[2, [1]], [8, [2]], [9, [2]]]);
    });

    it("adds no wait a clone already has: a clone is made from its converted template", () => {
        const plan = lanes([server(1, 0.9, true), server(8, 0.5, false)], never, (a, b) => a === 8 && b === 1);
        assert.deepEqual([...plan.waits], []);
    });

    it("keeps GPUs apart: a template on two GPUs leads both lanes, the servers on one GPU never wait for the other's", () => {
        const plan = lanes([server(910, 0.5, true, [0, 1]), server(911, 0.9, true, [0]), server(912, 0.9, true, [1])]);
        assert.deepEqual(plan.lanes.map((l) => [l.gpu, l.templates]), [[0, [910, 911]], [1, [910, 912]]]);
        assert.deepEqual([...plan.waits], [[911, [910]], [912, [910]]]);
    });

    it("reports a template that depends on a permanent server it does not fit beside (it could never start)", () => {
        const plan = lanes([server(1, 0.6, true), server(9, 0.5, false)], (a, b) => a === 1 && b === 9);
        assert.deepEqual(plan.conflicts.map((c) => [c.template.guest, c.permanent.guest, c.total]), [[1, 9, 1.1]]);
        assert.deepEqual([...plan.waits], [], "no wait that would close a cycle");
    });

    it("builds a guest after the templates its server waits for, and those after their own dependencies", () => {
        // 5 waits for template 9; 9 depends on 7: 7, 9, then 5, the rest in the given order.
        const prerequisites = (id: number) => ({ 5: [9], 9: [7] } as Record<number, number[]>)[id] ?? [];
        assert.deepEqual(orderWithLanes([1, 5, 7, 9, 11], prerequisites), [1, 7, 9, 5, 11]);
        assert.deepEqual(orderWithLanes([1, 2, 3], () => []), [1, 2, 3]);
    });
});

describe("the servers' script headers", () => {
    const scripts = new ScriptLibrary(path.join(ROOT, "features"));
    const names = fs.readdirSync(path.join(ROOT, "features")).filter((f) => f.endsWith(".sh")).map((f) => f.replace(/\.sh$/, ""));

    it("name the unit each server script installs (# @unit) and the share parameter vLLM reserves by (# @gpu-share)", () => {
        const units = Object.fromEntries(names.map((n) => [n, scripts.feature(n)!.units]).filter(([, u]) => (u as string[]).length > 0));
        assert.deepEqual(units, { llamacpp: ["llama-server.service"], ollama: ["ollama.service"], vllm: ["vllm.service"] });
        for (const [n, [unit]] of Object.entries(units)) assert.match(scripts.feature(n)!.content, new RegExp(`^readonly UNIT="${unit.replace(".", "\\.")}"$`, "m"), n);
        const vllm = scripts.feature("vllm")!;
        assert.deepEqual(vllm.gpuShare, { param: "GPU_MEMORY_UTILIZATION", default: 0.9 });
        const param = vllm.params.get("GPU_MEMORY_UTILIZATION")!;
        assert.deepEqual([param.required, param.default, param.format], [false, undefined, "fraction"], "optional: unset, vLLM applies its own default, the one the header states");
        assert.deepEqual(names.filter((n) => scripts.feature(n)!.gpuShare), ["vllm"]);
    });
});

describe("import of an original whose permanent vLLM servers overfill a GPU", () => {
    const FIXTURES = path.join(ROOT, "test", "fixtures", "phoenix-configs");
    const overfull = () => editedOriginal(FIXTURES, ({ lxc }) => {
        lxc.lxc_configs["801"].vllm_engine_config.CacheConfig = { gpu_memory_utilization: 0.3 };
        lxc.lxc_configs["802"].vllm_engine_config.CacheConfig.gpu_memory_utilization = 0.9;
    });

    it("scales their shares by one factor to fit, reports each change, and the catalog plans with zero problems", async () => {
        const from = overfull();
        const r = importPhoenix(from);
        const share = (id: number) => ((r.guests.find((g) => g.id === id)!.guest.features as any[]).find((f) => f.name === "vllm").params.gpuMemoryUtilization);
        assert.deepEqual([share(801), share(802), share(911), share(910)], [0.25, 0.75, 0.9, 0.5], "0.3 + 0.9 = 1.2: each times 1/1.2, in hundredths down; templates untouched");
        const note = (id: number) => r.guests.find((g) => g.id === id)!.notes.find((n) => n.key === "features[vllm].params.gpuMemoryUtilization")!;
        assert.equal(note(802).kind, "changed");
        assert.equal(note(802).detail, "0.9 -> 0.75: the GPU servers that run permanently on GPU 0 reserve 801 0.3 + 802 0.9 = 1.2 of its memory, so the last to start would fail " +
            "(a server such as vLLM does not start without its share free); each is scaled by the same factor to fit together: check that this guest's model and context still fit in 0.75 of the GPU");
        const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-gpu-import-")), "guests");
        const run = importCli("--from", from, "--out", out);
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stdout, /^Catalog check: 15 guests load without problems\.$/m);
        const plan = await makePlan({ catalog: out, guests: "all", config: { "phoenix:auth": "password", "phoenix:username": "root@pam" } });
        assert.deepEqual(plan.gpus[0].shares.filter((x) => !x.template).map((x) => [x.guest, x.share]), [[801, 0.25], [802, 0.75]]);
    });

    it("changes nothing where the permanent servers fit (the original's own installation: 0.1 + 0.85 on GPU 0)", () => {
        const r = importPhoenix(FIXTURES);
        assert.ok(!r.guests.some((g) => g.notes.some((n) => n.key.endsWith(".gpuMemoryUtilization"))));
    });
});
