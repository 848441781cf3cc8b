// The import of the original's whole installation (guests-full/, the committed fixture Pulumi.full.yaml plans) and of
// the original's own test configurations (phoenix-tests.md: tiny guests that leave everything else to its defaults).
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadCatalog } from "../catalog/load";
import { readinessWaves, resolveSelection } from "../catalog/graph";
import { makePlan } from "../plan/plan";
import { importPhoenix } from "../tools/phoenix/importer";
import { gpuIndexes } from "../tools/phoenix/lxc";
import { STANDIN_GGUF } from "../tools/phoenix/aiServers";
import { ROOT, importCli } from "./helpers";

const FIXTURES = path.join(ROOT, "test", "fixtures", "phoenix-configs");
const FULL = path.join(ROOT, "guests-full");
const REGENERATE = "npm run import-phoenix -- --from test/fixtures/phoenix-configs --out guests-full --force";

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** Runs the CLI in-process and captures what it prints. */
const cli = importCli;

type Notes = { kind: string; key: string; detail: string }[];
const notesOf = (r: ReturnType<typeof importPhoenix>, id: number): Notes => r.guests.find((g) => g.id === id)!.notes;

describe("import of the original's complete configuration (guests-full/)", () => {
    let out: string;
    let run: ReturnType<typeof cli>;
    before(() => {
        out = path.join(tmp("phoenix-full-"), "guests");
        run = cli("--from", FIXTURES, "--out", out);
        assert.equal(run.status, 0, run.stderr);
    });

    it("is committed exactly as the importer writes it", () => {
        const files = (dir: string) => fs.readdirSync(dir).sort();
        assert.deepEqual(files(FULL), files(out), `guests-full/ is stale: ${REGENERATE}`);
        for (const f of files(out)) {
            assert.equal(fs.readFileSync(path.join(FULL, f), "utf8"), fs.readFileSync(path.join(out, f), "utf8"), `guests-full/${f} is stale: ${REGENERATE}`);
        }
    });

    it("loads with zero problems: fifteen guests, eight of them with GPUs", () => {
        const c = loadCatalog({ dir: FULL, node: "phoenix" });
        assert.equal(c.guests.size, 15);
        const withGpus = [...c.guests.values()].filter((g) => g.kind === "lxc" && g.gpus.length > 0).map((g) => g.id).sort((a, b) => a - b);
        assert.deepEqual(withGpus, [801, 802, 901, 910, 911, 912, 914, 917]);
        assert.match(run.stdout, /^Catalog check: 15 guests load without problems\.$/m);
    });

    it("reports the GPU keys it changed: gpu_assignment, the driver, the engine settings, the missing application scripts", () => {
        const r = importPhoenix(FIXTURES);
        const changed = (id: number) => notesOf(r, id).filter((n) => n.kind === "changed").map((n) => n.key);
        for (const id of [801, 802, 901, 910, 911, 912, 914, 917]) assert.ok(changed(id).includes("gpu_assignment"), `${id}`);
        assert.match(notesOf(r, 910).find((n) => n.key === "gpu_assignment")!.detail, /^0,1 -> gpus: \[0, 1\]: \/dev\/nvidia0, \/dev\/nvidia1, nvidiactl, nvidia-uvm and nvidia-uvm-tools pass through as Proxmox devN entries/);
        for (const id of [801, 802, 910, 911, 912]) {
            assert.ok(changed(id).includes("vllm_engine_config"), `${id}`);
            assert.match(notesOf(r, id).find((n) => n.key === "application_script")!.detail, /^phoenix_hypervisor_lxc_vllm\.sh -> the vllm feature/);
        }
        assert.match(notesOf(r, 914).find((n) => n.key === "application_script")!.detail, /^phoenix_hypervisor_lxc_955\.sh \(the script is not in the original's repository\) -> the ollama feature/);
        const llama = notesOf(r, 917).find((n) => n.key === "features[llamacpp]")!;
        assert.equal(llama.kind, "added");
        assert.ok(llama.detail.includes(`modelUrl ${STANDIN_GGUF} is a stand-in: set the model this guest should serve`));
        const defaults = (key: string) => r.defaultsNotes.find((n) => n.key === key);
        assert.match(defaults("nvidia_driver.version")!.detail, /^nodes\.phoenix\.nvidiaDriver: 580\.76\.05/);
        assert.match(defaults("nodes.phoenix.gpus")!.detail, /^indexes 0, 1: the GPUs the guests' gpu_assignment names/);
        assert.equal(defaults("nvidia_runfile_url")!.kind, "dropped");
        assert.equal(defaults("nvidia_repo_url")!.kind, "dropped");
        assert.match(defaults("nvidia_driver.cuda_version")!.detail, /^featureParams\.nvidia\.cudaVersion: 12\.8/);
        for (const id of [801, 910, 914, 917]) assert.ok(notesOf(r, id).some((n) => n.kind === "added" && n.key === "healthCheck"), `${id}`);
        // Nothing of the GPU setup goes through raw lxc lines any more.
        assert.ok(!fs.readdirSync(FULL).some((f) => /nvidia|cgroup/.test(fs.readFileSync(path.join(FULL, f), "utf8").split("rawLxc:")[1]?.split(/\n\S/)[0] ?? "")));
    });

    it("turns the engine settings into the vllm feature's parameters and the rest into extraArgs, as the original's script did", () => {
        const dir = tmp("phoenix-vllm-");
        for (const f of fs.readdirSync(FIXTURES)) fs.copyFileSync(path.join(FIXTURES, f), path.join(dir, f));
        const file = path.join(dir, "phoenix_lxc_configs.json");
        const lxc = JSON.parse(fs.readFileSync(file, "utf8"));
        Object.assign(lxc.lxc_configs["910"].vllm_engine_config.ModelConfig, { enforce_eager: true, disable_log_stats: false, limit_mm_per_prompt: { image: 2 } });
        fs.writeFileSync(file, JSON.stringify(lxc));
        const r = importPhoenix(dir);
        const vllm = (r.guests.find((g) => g.id === 910)!.guest.features as any[]).find((f) => f.name === "vllm");
        assert.deepEqual(vllm.params, {
            model: "Qwen/Qwen2.5-7B-Instruct-AWQ", trustRemoteCode: true, dtype: "auto", maxModelLen: 4096,
            extraArgs: '--enforce-eager --limit-mm-per-prompt {"image":2}',
            quantization: "awq_marlin", gpuMemoryUtilization: 0.5, tensorParallelSize: 2, host: "0.0.0.0", port: 8000, servedModelName: "qwen2.5-7b-awq",
        });
        assert.deepEqual(notesOf(r, 910).filter((n) => n.key.startsWith("vllm_engine_config.")).map((n) => `${n.kind} ${n.key}`), [
            "changed vllm_engine_config.ModelConfig.enforce_eager",
            "dropped vllm_engine_config.ModelConfig.disable_log_stats",
            "changed vllm_engine_config.ModelConfig.limit_mm_per_prompt",
        ]);
    });

    it("parses the original's gpu_assignment forms", () => {
        assert.deepEqual([gpuIndexes("0, 1"), gpuIndexes("0,1"), gpuIndexes("1"), gpuIndexes(0), gpuIndexes("none"), gpuIndexes("all"), gpuIndexes(undefined)], [[0, 1], [0, 1], [1], [0], undefined, undefined, undefined]);
    });

    it("--node names the node whose GPUs and driver defaults.yaml declares", () => {
        const dir = path.join(tmp("phoenix-node-"), "guests");
        const r = cli("--from", FIXTURES, "--out", dir, "--node", "pve-gpu");
        assert.equal(r.status, 0, r.stderr);
        assert.match(fs.readFileSync(path.join(dir, "defaults.yaml"), "utf8"), /^nodes:\n {2}pve-gpu:\n {4}gpus:\n/m);
        assert.match(r.stdout, /^Catalog check: 15 guests load without problems\.$/m);
        assert.equal(cli("--from", FIXTURES, "--out", dir, "--node", "bad node").status, 1);
    });

    it("--help prints the usage and exits 0", () => {
        const r = cli("--help");
        assert.equal(r.status, 0);
        assert.equal(r.stderr, "");
        assert.match(r.stdout, /^usage: npm run import-phoenix -- --from <dir with phoenix_\*\.json> --out <catalog dir> \[--node <name>\] \[--force\] \[--json\]\n/);
        assert.match(r.stdout, /--node NAME {3}the Proxmox node the original ran on/);
        assert.equal(cli("-h").status, 0);
    });
});

/**
 * The original's ordering tests (phoenix-tests.md) each wrote a tiny phoenix_lxc_configs.json and kept the other two
 * files; here the VM file keeps only its vm_defaults, since its VMs depend on containers the tiny file lacks.
 */
const originalTestConfig = (lxcConfigs: Record<string, object>): string => {
    const dir = tmp("phoenix-original-test-");
    fs.writeFileSync(path.join(dir, "phoenix_lxc_configs.json"), JSON.stringify({ lxc_configs: lxcConfigs }));
    const vm = JSON.parse(fs.readFileSync(path.join(FIXTURES, "phoenix_vm_configs.json"), "utf8"));
    fs.writeFileSync(path.join(dir, "phoenix_vm_configs.json"), JSON.stringify({ vm_defaults: vm.vm_defaults, vms: [] }));
    fs.copyFileSync(path.join(FIXTURES, "phoenix_hypervisor_config.json"), path.join(dir, "phoenix_hypervisor_config.json"));
    return dir;
};

describe("import of the original's own test configurations (values it took from its defaults)", () => {
    it("test_dispatcher_dependency_resolution: imports, reports each filled value, and plans 9991, 9990, 9992", async () => {
        const from = originalTestConfig({ 9990: { dependencies: ["9991"] }, 9991: { dependencies: [] }, 9992: { dependencies: ["9990"] } });
        const out = path.join(tmp("phoenix-original-test-out-"), "guests");
        const run = cli("--from", from, "--out", out);
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stdout, /^Catalog check: 3 guests load without problems\.$/m);
        const r = importPhoenix(from);
        const added = (id: number) => Object.fromEntries(notesOf(r, id).filter((n) => n.kind === "added").map((n) => [n.key, n.detail]));
        assert.deepEqual(
            [added(9990).name, added(9990).cores, added(9990).memory_mb, added(9990).storage_size_gb, added(9990)["network_config.ip"]],
            [
                "missing (the original failed without it): imported as ct9990",
                "missing: cores 2 from phoenix_hypervisor_config.json proxmox_defaults.lxc",
                "missing: memoryMb 2048 from phoenix_hypervisor_config.json proxmox_defaults.lxc",
                "missing: diskGb 4 from pct create's default",
                "missing: imported as dhcp",
            ],
        );
        const guest = r.guests.find((g) => g.id === 9992)!.guest;
        assert.deepEqual([guest.cores, guest.memoryMb, guest.diskGb, guest.dependsOn], [2, 2048, 4, [9990]]);
        const catalog = loadCatalog({ dir: out, node: "phoenix" });
        assert.deepEqual(readinessWaves(catalog.graph, resolveSelection(catalog.graph, "all").selected), [[9991], [9990], [9992]]);
        const plan = await makePlan({ catalog: out, guests: "all" });
        assert.deepEqual(plan.recorded.guests.map((g) => [g.id, g.dependsOn]), [[9991, []], [9990, [9991]], [9992, [9990]]]);
    });

    it("test_dispatcher_execution_ordering: imports and plans (execution_order is reported, not guessed)", async () => {
        const from = originalTestConfig({ 9980: { execution_order: 2 }, 9981: { execution_order: 1 }, 9982: { execution_order: 3 } });
        const out = path.join(tmp("phoenix-original-test-out-"), "guests");
        const run = cli("--from", from, "--out", out);
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stdout, /^Catalog check: 3 guests load without problems\.$/m);
        assert.ok(notesOf(importPhoenix(from), 9980).some((n) => n.key === "execution_order"));
        const plan = await makePlan({ catalog: out, guests: "all" });
        assert.deepEqual(plan.recorded.guests.map((g) => g.id).sort(), [9980, 9981, 9982]);
    });

    it("a clone that leaves its sizes out keeps its source's; the file root comes before the installation's defaults", () => {
        const from = originalTestConfig({
            9970: { name: "base", cores: 6, memory_mb: 8192, storage_size_gb: 40, template: "/x/ubuntu-24.04-standard_24.04-2_amd64.tar.zst" },
            9971: { name: "copy", clone_from_ctid: "9970" },
        });
        const file = path.join(from, "phoenix_lxc_configs.json");
        fs.writeFileSync(file, JSON.stringify({ memory_mb: 3072, ...JSON.parse(fs.readFileSync(file, "utf8")) }));
        const r = importPhoenix(from);
        const copy = r.guests.find((g) => g.id === 9971)!;
        assert.deepEqual([copy.guest.cores, copy.guest.memoryMb, copy.guest.diskGb], [6, 8192, 40]);
        assert.equal(notesOf(r, 9971).find((n) => n.key === "cores")!.detail, "missing: cores 6 from its clone source 9970's (a clone keeps its source's configuration)");
        const base = importPhoenix(originalTestConfig({ 9972: { name: "lone" } }));
        assert.equal(notesOf(base, 9972).find((n) => n.key === "cores")!.detail, "missing: cores 2 from phoenix_hypervisor_config.json proxmox_defaults.lxc");
        const rooted = importPhoenix(from);
        assert.equal(rooted.guests.find((g) => g.id === 9970)!.guest.memoryMb, 8192, "its own value first");
        const lone = originalTestConfig({ 9973: { name: "lone" } });
        fs.writeFileSync(path.join(lone, "phoenix_lxc_configs.json"), JSON.stringify({ memory_mb: 3072, lxc_configs: { 9973: { name: "lone" } } }));
        assert.equal(notesOf(importPhoenix(lone), 9973).find((n) => n.key === "memory_mb")!.detail,
            "missing: memoryMb 3072 from the root of phoenix_lxc_configs.json (the original read a missing key there)");
    });
});
