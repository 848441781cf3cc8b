// GPU containers: the catalog's gpus and node inventory, the device passthroughs and steps the program registers for
// the original's eight GPU guests (the full installation, Pulumi.full.yaml over guests-full/), and the plan's GPU
// sharing.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import { gpuDevicePaths } from "../catalog/gpus";
import { type Recording, recordProgram, unwrapSecrets } from "../plan/engine";
import { readStackConfig } from "../plan/stackFile";
import { makePlan } from "../plan/plan";
import { renderText } from "../plan/render";
import { gpuPassthroughs } from "../components/lxc";
import { ROOT, find, inputs, names } from "./helpers";

const FULL = path.join(ROOT, "guests-full");
const GPU_GUESTS = [801, 802, 901, 910, 911, 912, 914, 917];
const CT = "proxmoxve:index/containerLegacy:ContainerLegacy";

/** A copy of guests-full/ with edits (file -> new text or function of the old text); returns its directory. */
const fullCopy = (edits: Record<string, (old: string) => string> = {}): string => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-gpu-")), "guests");
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(FULL)) fs.copyFileSync(path.join(FULL, f), path.join(dir, f));
    for (const [f, edit] of Object.entries(edits)) fs.writeFileSync(path.join(dir, f), edit(fs.readFileSync(path.join(dir, f), "utf8")));
    return dir;
};

/** The problems of a catalog as `<file>:<line>:<col> <field>: <message>`, file names without their directory. */
const problemsOf = (dir: string, node = "phoenix"): string[] => {
    try {
        loadCatalog({ dir, node });
    } catch (e) {
        assert.ok(e instanceof CatalogError, String(e));
        return e.problems.map((p) => `${path.basename(p.file)}:${p.line}:${p.col} ${p.field}: ${p.message}`);
    }
    return [];
};

const replaced = (from: string, to: string) => (s: string): string => {
    assert.ok(s.includes(from), `no ${JSON.stringify(from)} in the file`);
    return s.replace(from, to);
};

describe("GPU containers in the catalog", () => {
    it("loads the full installation with each GPU guest's devices, and the node's driver for the nvidia steps", () => {
        const c = loadCatalog({ dir: FULL, node: "phoenix" });
        const g = (id: number) => c.guests.get(id) as any;
        assert.deepEqual(c.defaults.nodes, { phoenix: { gpus: [{ index: 0 }, { index: 1 }], nvidiaDriver: "580.76.05", nvidiaCaps: [] } });
        assert.deepEqual(g(910).gpuDevices, ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidia1"]);
        assert.deepEqual(g(912).gpuDevices, ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia1"]);
        assert.deepEqual(g(103).gpuDevices, []);
        const nvidia = g(910).features.find((s: any) => s.name === "nvidia");
        assert.deepEqual(nvidia.env, { CUDA_VERSION: "12.8", NVIDIA_DRIVER_VERSION: "580.76.05", NVIDIA_GPUS: "0,1" });
        assert.equal(g(912).features.find((s: any) => s.name === "nvidia").env.NVIDIA_GPUS, "1");
    });

    it("passes the node's declared caps after the control devices, and no device without GPUs", () => {
        assert.deepEqual(gpuDevicePaths([1], { gpus: [{ index: 1 }], nvidiaCaps: [1, 2] }), [
            "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-caps/nvidia-cap1", "/dev/nvidia-caps/nvidia-cap2", "/dev/nvidia1",
        ]);
        assert.deepEqual(gpuDevicePaths([], { gpus: [{ index: 0 }], nvidiaCaps: [1] }), []);
        assert.equal(gpuPassthroughs([]), undefined);
    });

    it("reports a GPU the node does not declare, a node without GPUs and a GPU listed twice, with file, line and field", () => {
        const dir = fullCopy({
            "912-copy-vllm-gpu1.yaml": replaced("gpus: [ 1 ]", "gpus: [ 2 ]"),
            "910-copy-vllm-gpux2.yaml": replaced("gpus: [ 0, 1 ]", "gpus: [ 0, 0 ]"),
            "914-ollama-gpu0.yaml": replaced("gpus: [ 0 ]", "node: pve2\ngpus: [ 0 ]"),
            // 914 on pve2 clones 901 on phoenix: Proxmox does that only onto shared storage.
            "defaults.yaml": (t) => `${t}datastores:\n  quickOS-lxc-disks: { shared: true }\n`,
        });
        assert.deepEqual(problemsOf(dir), [
            "910-copy-vllm-gpux2.yaml:17:12 gpus[1]: GPU 0 is listed twice",
            "912-copy-vllm-gpu1.yaml:17:9 gpus[0]: GPU 2 is not declared for node phoenix (defaults.yaml nodes.phoenix.gpus has 0, 1)",
            "914-ollama-gpu0.yaml:18:7 gpus: node pve2 declares no GPUs: list them in defaults.yaml nodes.pve2.gpus (index as nvidia-smi shows it on the node), with nodes.pve2.nvidiaDriver",
            "914-ollama-gpu0.yaml:20:13 features[0]: nvidia.sh requires NVIDIA_DRIVER_VERSION (Driver version of the node (set by the catalog from defaults.yaml nodes.<node>.nvidiaDriver)); set nodes.pve2.nvidiaDriver in defaults.yaml (the driver version the node runs)",
        ]);
    });

    it("reports a GPU declared twice for a node, and a malformed driver version, in defaults.yaml", () => {
        const dir = fullCopy({ "defaults.yaml": replaced("      - { index: 1 }\n    nvidiaDriver: 580.76.05", "      - { index: 0 }\n    nvidiaDriver: latest") });
        assert.deepEqual(problemsOf(dir), [
            "defaults.yaml:24:18 nodes.phoenix.gpus[1].index: GPU 0 is declared twice",
            'defaults.yaml:25:19 nodes.phoenix.nvidiaDriver: expected an NVIDIA driver version such as 580.76.05, received "latest"',
        ]);
    });

    it("says what to set when the nvidia feature has no GPU or the node no driver, and refuses a driver given by hand", () => {
        const dir = fullCopy({
            "901-copy-cuda12-8.yaml": replaced("gpus: [ 0, 1 ]\n", ""),
            "defaults.yaml": replaced("    nvidiaDriver: 580.76.05\n", ""),
            "911-copy-vllm-gpu0.yaml": replaced("  - nvidia\n", "  - { name: nvidia, params: { nvidiaDriverVersion: 575.64.05 } }\n"),
        });
        const problems = problemsOf(dir);
        assert.ok(problems.includes(
            "901-copy-cuda12-8.yaml:19:13 features[0]: nvidia.sh requires NVIDIA_GPUS (GPU indexes passed through, comma-separated (set by the catalog from the guest's gpus)); set gpus: [<index>] on the guest (a container without GPUs has nothing for the NVIDIA userspace to drive)",
        ), problems.join("\n"));
        assert.ok(problems.some((p) => /^910-copy-vllm-gpux2\.yaml:\d+:\d+ features\[0\]: nvidia\.sh requires NVIDIA_DRIVER_VERSION .*set nodes\.phoenix\.nvidiaDriver in defaults\.yaml \(the driver version the node runs\)$/.test(p)), problems.join("\n"));
        assert.ok(problems.some((p) => /^911-copy-vllm-gpu0\.yaml:\d+:\d+ features\[0\]\.params\.nvidiaDriverVersion: set by the catalog from the guest's node and gpus \(nodes\.phoenix\.nvidiaDriver in defaults\.yaml .*\); remove this parameter$/.test(p)), problems.join("\n"));
    });
});

describe("GPU memory shares in the catalog", () => {
    it("refuses GPU servers that run permanently on one GPU with shares above all of it, naming the guests and the sum, at the last one's share", () => {
        const dir = fullCopy({ "801-granite-embedding.yaml": replaced("gpuMemoryUtilization: 0.1", "gpuMemoryUtilization: 0.2") });
        assert.deepEqual(problemsOf(dir), [
            "802-granite-3-3-8b-fp8.yaml:29:29 features[0].params.gpuMemoryUtilization: the GPU servers that run permanently on phoenix GPU 0 reserve 801 0.2 + 802 0.85 = 1.05 of its memory, more than all of it: " +
                "the last to start would fail (vLLM does not start without its share free). Lower their shares (vllm gpuMemoryUtilization) to sum to at most 1, " +
                "or give one of guests 801, 802 another GPU (templates do not count: they stop when converted)",
        ]);
    });

    it("counts vLLM's own default (0.9) for a server that states no share, and locates the problem at its feature", () => {
        // 0.1 + 0.9 is exactly the GPU (in hundredths, not floating point): accepted; one hundredth more is not.
        assert.deepEqual(problemsOf(fullCopy({ "802-granite-3-3-8b-fp8.yaml": replaced("      gpuMemoryUtilization: 0.85\n", "") })), []);
        const over = fullCopy({
            "802-granite-3-3-8b-fp8.yaml": replaced("      gpuMemoryUtilization: 0.85\n", ""),
            "801-granite-embedding.yaml": replaced("gpuMemoryUtilization: 0.1", "gpuMemoryUtilization: 0.11"),
        });
        assert.deepEqual(problemsOf(over).map((p) => p.replace(/: the GPU servers .* reserve (.*?) of its memory.*$/, ": $1")), [
            "802-granite-3-3-8b-fp8.yaml:22:5 features[0]: 801 0.11 + 802 0.9 (the default) = 1.01",
        ]);
    });

    it("refuses a template that depends on a permanent server beside which its own could never start", () => {
        const dir = fullCopy({ "910-copy-vllm-gpux2.yaml": replaced("cloneFrom: 901\n", "cloneFrom: 901\ndependsOn: [ 801 ]\n") });
        assert.deepEqual(problemsOf(dir), [
            "910-copy-vllm-gpux2.yaml:29:29 features[1].params.gpuMemoryUtilization: template 910 runs its GPU server on phoenix GPU 0 (0.5) and depends on guest 801, whose server holds 0.1 of that GPU for good: " +
                "together 1.45, more than the GPU, so 910's server could never start. Lower a share, or give one of them another GPU",
        ]);
    });
});

describe("the full installation under the mock engine (Pulumi.full.yaml)", () => {
    let rec: Recording;
    before(async () => {
        const sc = readStackConfig("full");
        assert.equal(sc.config["phoenix:selectAll"], true);
        assert.equal(sc.config["phoenix:catalog"], "guests-full");
        rec = await recordProgram({ config: sc.config, secretKeys: sc.secretKeys, stack: "full" });
        assert.equal(rec.error, undefined, rec.error?.message);
    });

    it("passes each GPU guest's devices through as devN entries: control devices, then /dev/nvidia<N>, mode 0666, owned by root", () => {
        const devices = (id: number) => inputs(rec, `${id}-ct`).devicePassthroughs;
        const entry = (p: string) => ({ path: p, mode: "0666", uid: 0, gid: 0, denyWrite: false });
        const control = ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"].map(entry);
        assert.deepEqual(devices(910), [...control, entry("/dev/nvidia0"), entry("/dev/nvidia1")]);
        assert.deepEqual(devices(901), [...control, entry("/dev/nvidia0"), entry("/dev/nvidia1")]);
        assert.deepEqual(devices(912), [...control, entry("/dev/nvidia1")]);
        for (const id of [801, 802, 911, 914, 917]) assert.deepEqual(devices(id), [...control, entry("/dev/nvidia0")], `${id}`);
        for (const id of [900, 103, 101, 102]) assert.equal(devices(id), undefined, `${id} has no GPU`);
        // No raw cgroup or bind lines for the GPUs: the devN entries do it.
        for (const id of GPU_GUESTS) {
            const conf = rec.registrations.find((r) => r.name === `${id}-lxc-conf`);
            assert.ok(!conf || !/nvidia|cgroup/.test(String(conf.inputs.create)), `${id}-lxc-conf`);
        }
    });

    it("removes a template's devices when converting it, so that a clone has only its own GPUs", () => {
        const convert = (id: number) => String(inputs(rec, `${id}-template`).create);
        assert.match(convert(901), /\npct shutdown 901 --timeout 120 \|\| pct stop 901\npct set 901 --delete dev0,dev1,dev2,dev3,dev4\n.*\npct template 901\n/);
        assert.match(convert(911), /\npct set 911 --delete dev0,dev1,dev2,dev3\n/);
        assert.ok(!convert(900).includes("--delete"), "900 has no devices");
        // The removal is the conversion's, not a diff for the provider to undo; non-templates keep the diff.
        assert.deepEqual(find(rec, "901-ct").ignoreChanges, ["started", "template", "devicePassthroughs", "clone", "disk.size"], "a clone: its disk size is its resize step's");
        assert.deepEqual(find(rec, "801-ct").ignoreChanges, ["started", "template", "clone", "disk.size"], "a clone is never re-created for its clone block");
        assert.deepEqual(find(rec, "900-ct").ignoreChanges, ["started", "template"]);
    });

    it("registers each GPU guest's features in catalog order, after its start, with the node's driver and its GPUs", () => {
        const features = (id: number) => rec.registrations.filter((r) => r.parent.endsWith(`::${id}`) && /-feature-/.test(r.name)).map((r) => r.name);
        assert.deepEqual(features(901), ["901-feature-nvidia"]);
        for (const id of [910, 911, 912]) assert.deepEqual(features(id), [`${id}-feature-nvidia`, `${id}-feature-vllm`]);
        assert.deepEqual(features(914), ["914-feature-nvidia", "914-feature-ollama"]);
        assert.deepEqual(features(917), ["917-feature-nvidia", "917-feature-llamacpp"]);
        for (const id of [801, 802]) assert.deepEqual(features(id), [`${id}-feature-vllm`]);
        const cmd = (name: string) => String(inputs(rec, name).create);
        assert.match(cmd("910-feature-nvidia"), /^pct exec 910 -- env .*NVIDIA_DRIVER_VERSION='580\.76\.05' NVIDIA_GPUS='0,1' bash -s$/m);
        assert.match(cmd("910-feature-nvidia"), / CUDA_VERSION='12\.8' /);
        assert.match(cmd("910-feature-vllm"), / MODEL='Qwen\/Qwen2\.5-7B-Instruct-AWQ' .*QUANTIZATION='awq_marlin' GPU_MEMORY_UTILIZATION='0\.5' TENSOR_PARALLEL_SIZE='2' /);
        assert.match(cmd("917-feature-llamacpp"), / MODEL_URL='https:\/\/huggingface\.co\/[^']+\.gguf' PORT='8081' bash -s$/m);
        assert.ok(String(inputs(rec, "910-feature-vllm").stdin).includes("readonly SCRIPT_NAME=\"vllm.sh\""));
        const deps = (name: string) => names(find(rec, name).dependencies);
        assert.ok(deps("910-feature-nvidia").includes("910-start"));
        assert.ok(deps("910-feature-vllm").includes("910-feature-nvidia"));
        assert.ok(deps("917-feature-llamacpp").includes("917-feature-nvidia"));
    });

    it("checks each server's real health endpoint on the guest's loopback, after its feature", () => {
        const health = (id: number) => String(inputs(rec, `${id}-health`).stdin);
        for (const id of [801, 802, 910, 911, 912]) assert.match(health(id), /bash -c 'curl -fsS http:\/\/127\.0\.0\.1:8000\/health'/, `${id}`);
        assert.match(health(914), /bash -c 'curl -fsS http:\/\/127\.0\.0\.1:11434\/api\/version'/);
        assert.match(health(917), /bash -c 'curl -fsS http:\/\/127\.0\.0\.1:8081\/health'/);
        assert.match(health(910), /for attempt in \$\(seq 1 60\)/);
        assert.ok(names(find(rec, "910-health").dependencies).includes("910-feature-vllm"));
        assert.ok(names(find(rec, "917-health").dependencies).includes("917-feature-llamacpp"));
        // Dependents of 1002 wait for its readiness at the health check (their first gated step).
        assert.ok(names(find(rec, "801-health").dependencies).includes("1002-health"));
        assert.equal(rec.registrations.filter((r) => r.type === CT).length, 12);
    });

    it("starts a vLLM server only once the templates in its GPU lane are converted (stopped): 911 and 912 after 910", () => {
        const deps = (name: string) => names(find(rec, name).dependencies);
        assert.ok(deps("911-feature-vllm").includes("910-template"), "0.5 + 0.9 of GPU 0 do not fit together");
        assert.ok(deps("912-feature-vllm").includes("910-template"), "0.5 + 0.9 of GPU 1 do not fit together");
        assert.ok(!deps("910-feature-vllm").some((d) => /-template$/.test(d)), "the lane's first");
        // 801 and 802 clone 911, which is converted after 911's server and 910's conversion: no wait to add.
        for (const id of [801, 802]) assert.ok(!deps(`${id}-feature-vllm`).some((d) => /^9\d\d-template$/.test(d)), `${id}`);
        // Only the server step waits: 911's container, start and nvidia step run beside 910's server.
        for (const step of ["911-ct", "911-start", "911-feature-nvidia", "914-feature-ollama", "917-feature-llamacpp"]) assert.ok(!deps(step).includes("910-template"), step);
    });

    it("stops and disables a template's servers when converting it, so that its clones boot none of them", () => {
        const convert = (id: number) => String(inputs(rec, `${id}-template`).create);
        for (const id of [910, 911, 912]) {
            assert.match(convert(id), new RegExp(`\\npct exec ${id} -- systemctl disable --now 'vllm\\.service'\\n.*\\npct shutdown ${id} `), `${id}`);
        }
        for (const id of [900, 901]) assert.ok(!convert(id).includes("systemctl"), `${id} runs no server`);
    });

    it("refuses an API-token login, which Proxmox does not allow to set devN", async () => {
        const sc = readStackConfig("full");
        const token = await recordProgram({ config: { ...sc.config, "phoenix:auth": "token" }, secretKeys: sc.secretKeys, stack: "full" });
        assert.ok(token.error instanceof pulumi.RunError);
        assert.match(token.error.message, /^guests 103, 101, 102, 901, 910, 911, 912, 914, 917, 801, 802 use bind mounts, device passthrough \(GPUs\)/);
        assert.equal(unwrapSecrets(token.registrations).length, 0);
    });
});

describe("the plan of the full installation", () => {
    it("shows its waves, the guests that share each GPU, the memory their servers reserve and the GPU lanes", async () => {
        const plan = await makePlan({ stack: "full" });
        assert.equal(plan.recorded.guests.length, 15);
        // GPU lanes are scheduling, like clone lanes: the readiness waves stay those of the dependencies. The gateway
        // (101) is ready once every route answers through it: after the last route's targets (801, 802).
        assert.deepEqual(plan.recorded.waves, [[900, 9000], [103], [102], [1001], [1002], [901], [910, 911, 912, 914, 917], [801, 802], [101]]);
        assert.deepEqual(plan.gpus.map((u) => [u.node, u.gpu, u.guests]), [["phoenix", 0, [801, 802, 901, 910, 911, 914, 917]], ["phoenix", 1, [901, 910, 912]]]);
        assert.deepEqual(plan.gpus[0].shares.map((s) => [s.guest, s.share, s.template]), [[801, 0.1, false], [802, 0.85, false], [910, 0.5, true], [911, 0.9, true]]);
        assert.deepEqual(plan.gpus[0].uncounted, [{ guest: 914, server: "ollama" }, { guest: 917, server: "llamacpp" }]);
        assert.deepEqual(plan.gpus.map((u) => u.lane), [[[910], [911], [801, 802]], [[910], [912]]]);
        assert.deepEqual(plan.gpus[1].templates, [901, 910, 912]);
        assert.deepEqual(plan.recorded.gpuLanes, [{ guest: 911, step: "911-feature-vllm", after: ["910-template"] }, { guest: 912, step: "912-feature-vllm", after: ["910-template"] }]);
        const text = renderText(plan);
        assert.match(text, /^GPUs \(device passthrough; the guests on one GPU share its memory\)\n  phoenix GPU 0  801, 802, 901, 910, 911, 914, 917 \(shared by 7 guests\)$/m);
        assert.match(text, /^ {17}memory reserved for good \(servers that stay\): 801 0\.1 \+ 802 0\.85 = 0\.95 of the GPU$/m);
        assert.match(text, /^ {17}memory reserved while built \(templates, stopped once converted\): 910 0\.5, 912 0\.9$/m);
        assert.match(text, /^ {17}GPU lane \(reserving servers that would not fit together start in turn\): 910 -> 911 -> 801, 802$/m);
        assert.match(text, /^ {17}not counted \(no share declared; their models take what is free\): 914 ollama, 917 llamacpp$/m);
        assert.match(text, /^ {17}templates, which release it once converted: 901, 910, 911$/m);
        assert.match(text, /^ {5}8\. 911-feature-vllm +feature vllm +30 s +\d+-\d+ +after 910-template \(GPU lane: 910 frees its GPU memory once converted\)$/m);
        // The simulated run never reserves more than a GPU: 911 and 912 start vLLM only once 910 is converted (stopped).
        assert.deepEqual(plan.gpus.map((u) => u.peak!.share), [0.95, 0.9]);
        assert.match(text, /^ {17}at most 0\.95 of the GPU reserved at once in the simulated run \(from \d+ s\)$/m);
        const at = (name: string, end = false) => (end ? plan.schedule.end : plan.schedule.start).get(name)!;
        assert.ok(at("911-feature-vllm") >= at("910-template", true) && at("912-feature-vllm") >= at("910-template", true));
        assert.ok(at("801-feature-vllm") >= at("911-template", true));
        // The dev stack has no GPU guest: no GPU section, no GPU lane.
        const dev = await makePlan();
        assert.deepEqual([dev.gpus, dev.recorded.gpuLanes], [[], []]);
        assert.ok(!renderText(dev).includes("GPU"));
    });
});
