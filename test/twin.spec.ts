// The provider twin (plan/twin): its rules cover every input the program sets, and day-two scenarios on the dev stack
// (first up, an edit, the next up) give exactly the operations the real providers and engine would run.
import { strict as assert } from "assert";
import { createHash } from "crypto";
import { recordProgram } from "../plan/engine";
import { runConfig } from "../plan/plan";
import { writeSyntheticCatalog } from "../plan/synthetic";
import { type Change, type RunResult, type StackState, refresh, twinUp } from "../plan/twin";
import { FIELD_RULES, UNMODELLED, rulesFor } from "../plan/twin/rules";
import { ruleFor, unwrapSecrets } from "../plan/twin/values";
import { loadCatalog } from "../catalog/load";
import { protectionNotice } from "../components/protection";
import { CatalogError } from "../catalog/problems";
import * as path from "path";
import { readStackConfig } from "../plan/stackFile";
import { ROOT, catalogCopy, devConfig, ops, projectCopy, recordDev } from "./helpers";


/** `pulumi up` then the deploy workflow's `pulumi refresh`. */
const deploy = async (overrides: Record<string, unknown> = {}, prior?: StackState): Promise<{ up: RunResult; state: StackState; refreshed: Change[] }> => {
    const up = await twinUp({ ...devConfig(overrides), prior });
    assert.equal(up.error, undefined, up.error);
    const r = refresh(up.state);
    return { up, state: r.state, refreshed: r.changes };
};

const leafPaths = (v: unknown, path = ""): string[] =>
    Array.isArray(v) ? v.flatMap((x, i) => leafPaths(x, `${path}[${i}]`))
    : v && typeof v === "object" ? Object.entries(v).flatMap(([k, x]) => leafPaths(x, path ? `${path}.${k}` : k))
    : [path];

describe("provider twin: rules", () => {
    it("cover every input the program sets on the whole catalog, the full installation and a 3-node cluster with HA, each with its source", async () => {
        const full = readStackConfig("full");
        const cluster = writeSyntheticCatalog({ guests: 40, nodes: ["pve1", "pve2", "pve3"], haEvery: 5 });
        const clustered = runConfig({ catalog: cluster.dir, guests: "all", config: cluster.config });
        const recs = [
            await recordDev({ "phoenix:selectAll": true }),
            await recordProgram({ config: full.config, secretKeys: full.secretKeys, stack: "full" }),
            await recordProgram(clustered),
        ];
        cluster.remove();
        const unmodelled = new Set<string>();
        for (const r of recs.flatMap((x) => x.registrations).filter((x) => x.custom)) {
            for (const p of leafPaths(unwrapSecrets(r.inputs))) if (ruleFor(rulesFor(r.type), p, UNMODELLED) === UNMODELLED) unmodelled.add(`${r.type} ${p}`);
        }
        assert.deepEqual([...unmodelled], []);
        for (const [type, rules] of Object.entries(FIELD_RULES)) {
            for (const rule of rules) assert.match(rule.cite, /§\d|\.go:|resources\.go|inputs\.go|notes/, `${type} ${rule.path} cites its source`);
        }
    });
});

describe("provider twin: day two on the dev stack", function () {
    let first: { up: RunResult; state: StackState; refreshed: Change[] };
    before(async () => {
        first = await deploy();
    });

    it("first up creates every resource and nothing fails", () => {
        assert.equal(first.up.changes.filter((c) => c.op !== "create").length, 0);
        assert.equal(first.up.changes.length, first.up.recording.registrations.length);
    });

    it("the refresh after the first up reads back what create never stored: containers started with their addresses, 900 a template", () => {
        assert.deepEqual(ops({ changes: first.refreshed }), [
            "update 900-ct [template]",
            "update 103-ct [started, ipv4.eth0]",
            // The clone's disk as its resize step left it: the provider stored the source's size at create.
            "update 101-ct [disk.size, started, ipv4.eth0]",
            "update 102-ct [started, ipv4.eth0]",
        ]);
        const ct = first.state.resources.find((r) => r.name === "101-ct")!;
        assert.deepEqual([ct.outputs.started, ct.outputs.ipv4, ct.inputs.started], [true, { eth0: "10.0.0.153" }, true], "a refresh stores the read value into the inputs too");
    });

    it("a memory and core edit updates the container in place; the provider reboots it for the memory", async () => {
        const dir = catalogCopy({ "102-traefik-internal.yaml": (t) => t.replace("memoryMb: 2048", "memoryMb: 3072").replace("cores: 2", "cores: 3") });
        const next = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
        assert.equal(next.error, undefined);
        assert.deepEqual(ops(next), ["update 102-ct [cpu.cores, memory.dedicated] (reboot)"]);
        const edit = next.changes.find((c) => c.name === "102-ct")!;
        assert.deepEqual([edit.op, edit.fields, edit.reboot], ["update", ["cpu.cores", "memory.dedicated"], true]);
        assert.deepEqual(edit.rules.map((r) => r.cite), ["§2.1; CT:3603-3634", "§2.1; CT:3885 reboot required"]);
    });

    it("a memory edit announces the reboot even when the state still says stopped (inferred: the safe side), never for a template", async () => {
        // Right after the first up, before any refresh, the state holds started=false for every container.
        assert.equal(first.up.state.resources.find((r) => r.name === "102-ct")!.outputs.started, false);
        const dir = catalogCopy({
            "102-traefik-internal.yaml": (t) => t.replace("memoryMb: 2048", "memoryMb: 3072"),
            "900-copy-base.yaml": (t) => t.replace("memoryMb: 2048", "memoryMb: 1536"),
        });
        const edit = (r: RunResult, name: string) => {
            const c = r.changes.find((x) => x.name === name)!;
            return [c.op, c.fields, c.reboot];
        };
        const early = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.up.state });
        assert.equal(early.error, undefined);
        assert.deepEqual(edit(early, "102-ct"), ["update", ["memory.dedicated"], true]);
        // Once the provider has read 900 back as a template (the deploy's refresh), it is known never to be rebooted (CT:4163).
        const later = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
        assert.deepEqual(edit(later, "102-ct"), ["update", ["memory.dedicated"], true]);
        assert.deepEqual(edit(later, "900-ct"), ["update", ["memory.dedicated"], false]);
    });

    it("a VM core change updates it in place, and the provider power-cycles the running VM for it", async () => {
        const dir = catalogCopy({ "1002-drphoenix.yaml": (t) => t.replace("cores: 4", "cores: 6") });
        const next = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
        assert.deepEqual(ops(next), ["update 1002-vm [cpu.cores] (reboot)"]);
        assert.equal(next.changes.find((c) => c.name === "1002-vm")!.rules[0].cite, "§3.1; VM:6382-6478 (only hotplugged vcpus avoid it; the program sets none)");
    });

    describe("the second up changes nothing", () => {
        it("an unchanged program re-run after the deploy has zero operations", async () => {
            const second = await twinUp({ ...devConfig(), prior: first.state });
            assert.equal(second.error, undefined);
            assert.deepEqual(ops(second), []);
        });

        it("so does the original's whole installation (Pulumi.full.yaml: GPU containers, templates cloned from templates)", async () => {
            const full = readStackConfig("full");
            const cfg = { config: full.config, secretKeys: full.secretKeys, stack: "full" };
            const up = await twinUp(cfg);
            assert.equal(up.error, undefined);
            const again = await twinUp({ ...cfg, prior: refresh(up.state).state });
            assert.deepEqual([again.error, ops(again)], [undefined, []]);
        });

        it("and a 3-node cluster with template copies, cross-node clones and HA", async () => {
            const cluster = writeSyntheticCatalog({ guests: 40, nodes: ["pve1", "pve2", "pve3"], haEvery: 5 });
            try {
                const cfg = runConfig({ catalog: cluster.dir, guests: "all", config: cluster.config });
                const up = await twinUp(cfg);
                assert.equal(up.error, undefined);
                const again = await twinUp({ ...cfg, prior: refresh(up.state).state });
                assert.deepEqual([again.error, ops(again)], [undefined, []]);
            } finally {
                cluster.remove();
            }
        });

        it("so does one without the refresh in between: the provider's diff drops the ignored paths too (a clone's disk size as create stored it)", async () => {
            const second = await twinUp({ ...devConfig(), prior: first.up.state });
            assert.deepEqual([second.error, ops(second)], [undefined, []]);
        });

        it("the nightly drift check (pulumi refresh --expect-no-changes) after the deploy finds nothing", () => {
            assert.deepEqual(ops(refresh(first.state)), []);
        });

        it("gives each clone its catalog disk size on the first up (a clone starts with its source's)", () => {
            const size = (id: number) => first.up.state.node.guests.get(id)!.disks[0].sizeGb;
            assert.deepEqual([900, 103, 101, 102].map(size), [16, 16, 32, 16]);
            const stored = (s: StackState) => s.resources.find((r) => r.name === "101-ct")!.outputs.disk.size;
            assert.deepEqual([stored(first.up.state), stored(first.state)], [16, 32], "create stored the source's size; the refresh reads the resized disk");
            assert.deepEqual(first.up.changes.find((c) => c.name === "101-resize")!.runs.map((r) => r.ran), ["create"]);
        });

        it("a bigger catalog disk later grows it through the resize step alone", async () => {
            const dir = catalogCopy({ "101-nginx-phoenix.yaml": (t) => t.replace("diskGb: 32", "diskGb: 40") });
            const next = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
            assert.deepEqual(ops(next), ["replace 101-resize [create, triggers]"]);
            assert.equal(next.state.node.guests.get(101)!.disks[0].sizeGb, 40);
        });

        it("a clone smaller than its source is a catalog error at the clone's diskGb", () => {
            const dir = catalogCopy({ "102-traefik-internal.yaml": (t) => t.replace("diskGb: 16", "diskGb: 8") });
            assert.throws(() => loadCatalog({ dir, node: "pve", baseDir: ROOT }), (e: CatalogError) =>
                /102-traefik-internal\.yaml:11:9 diskGb: 8 GB is smaller than the root disk of its clone source 900 \(16 GB\); a clone starts as a copy of it and a disk cannot shrink: set diskGb to 16 or more/.test(e.message));
        });
    });

    describe("key rotation re-runs nothing", () => {
        const keys = (key: string, password: string) => ({ "phoenix:sshPrivateKey": key, "phoenix:password": password });
        let keyed: StackState;
        before(async () => {
            keyed = (await deploy(keys("node-key-1", "pw-1"))).state;
        });

        it("a new node SSH key and API password update the provider and every command's connection; no step runs again", async () => {
            const next = await twinUp({ ...devConfig(keys("node-key-2", "pw-2")), prior: keyed });
            assert.equal(next.error, undefined);
            const changed = next.changes.filter((c) => c.op !== "same");
            // A clone's firewall reset runs once whatever its connection becomes (ignoreChanges: connection).
            const commands = next.recording.registrations.filter((r) => r.type === "command:remote:Command" && !r.name.endsWith("-fw-reset")).map((r) => r.name);
            assert.deepEqual(ops({ changes: changed.filter((c) => c.type !== "command:remote:Command") }), ["update proxmoxve [password, ssh]"]);
            assert.deepEqual(changed.filter((c) => c.type === "command:remote:Command").map((c) => c.name), commands, "every command, and only its connection");
            for (const c of changed.filter((x) => x.type === "command:remote:Command")) {
                assert.deepEqual([c.op, c.fields, c.runs.map((r) => r.ran)], ["update", ["connection"], ["update"]], c.name);
            }
            const trusted = next.state.resources.find((r) => r.name === "101-feature-trusted_ca")!;
            assert.equal(trusted.outputs.stdout, "", "trusted_ca did not run again");
            assert.equal(next.state.resources.find((r) => r.name === "103-feature-step_ca")!.outputs.stdout, first.up.state.resources.find((r) => r.name === "103-feature-step_ca")!.outputs.stdout,
                "step_ca's update prints the CA root again, so the steps that read it see no change");
            assert.deepEqual(ops(await twinUp({ ...devConfig(keys("node-key-2", "pw-2")), prior: next.state })), [], "and the run after it has nothing left");
        });

        it("a rotated secret re-runs exactly the step that reads it", async () => {
            const next = await twinUp({ ...devConfig({ ...keys("node-key-1", "pw-1"), "phoenix:stepCaPassword": "rotated" }), prior: keyed });
            assert.deepEqual(ops(next), ["replace 103-feature-step_ca [stdin, triggers]"]);
            assert.deepEqual(next.changes.find((c) => c.name === "103-feature-step_ca")!.runs.map((r) => r.ran), ["create"]);
        });

        it("a rotated cloud-init password changes nothing on the VM (the provider suppresses it, VM:979-982), and the program says how to change it", async () => {
            const withPassword = catalogCopy({ "1001-portainer.yaml": (t) => t.replace("  user: phoenix_user\n", "  user: phoenix_user\n  passwordSecret: vmPassword\n") });
            const config = (password: string) => ({ ...devConfig({ "phoenix:catalog": withPassword, "phoenix:vmPassword": password }), secretKeys: [...devConfig().secretKeys, "phoenix:vmPassword"] });
            const up = await twinUp(config("vm-pw-1"));
            assert.equal(up.error, undefined, up.error);
            const rotated = await twinUp({ ...config("vm-pw-2"), prior: refresh(up.state).state });
            assert.deepEqual([rotated.error, ops(rotated)], [undefined, []]);
            assert.ok(rotated.warnings.some((w) => w.startsWith("guest 1001: the cloud-init password (stack config vmPassword) is set once")), rotated.warnings.join("\n"));
        });

        it("after a rotation, deletes run with the new key (the rotation stored it)", async () => {
            const snaps = catalogCopy({
                "102-traefik-internal.yaml": (t) => t.replace(/bindMounts:\n  - .*\n/, "").replace("startOnBoot: true", "startOnBoot: true\nlifecycleSnapshots: true"),
            });
            const withSnaps = (await deploy({ ...keys("node-key-1", "pw-1"), "phoenix:catalog": snaps })).state;
            const rotated = await twinUp({ ...devConfig({ ...keys("node-key-2", "pw-2"), "phoenix:catalog": snaps }), prior: withSnaps });
            assert.equal(rotated.state.node.guests.get(102)!.snapshots.join(), "pre-configured,final-form");
            const noSnaps = catalogCopy({ "102-traefik-internal.yaml": (t) => t.replace(/bindMounts:\n  - .*\n/, "") });
            const dropped = await twinUp({ ...devConfig({ ...keys("node-key-2", "pw-2"), "phoenix:catalog": noSnaps }), prior: rotated.state });
            const key = (k: string) => createHash("sha256").update(k).digest("hex").slice(0, 12);
            assert.deepEqual(dropped.changes.filter((c) => c.op === "delete").map((c) => [c.name, c.runs]), [
                ["102-snap-final-form", [{ ran: "delete", key: key("node-key-2") }]],
                ["102-snap-pre-configured", [{ ran: "delete", key: key("node-key-2") }]],
            ]);
            assert.equal(dropped.state.node.guests.get(102)!.snapshots.length, 0);
        });
    });

    describe("a change to a shared script never breaks the stack", () => {
        const TEMPLATE_URN = "urn:pulumi:dev::phoenix::phoenix:index:LxcGuest$proxmoxve:index/containerLegacy:ContainerLegacy::900-ct";
        let edited: { config: Record<string, unknown>; secretKeys: string[]; program: string };
        let next: RunResult;
        before(async () => {
            const dir = projectCopy({ "features/lib/common.sh": (t) => `${t}\n# a helper added later\n` });
            const sc = readStackConfig("dev", dir);
            edited = { config: sc.config, secretKeys: sc.secretKeys, program: path.join(dir, "index") };
            next = await twinUp({ ...edited, prior: first.state });
        });

        it("the template's steps stay as built; every clone's steps that send common.sh run again; nothing fails", () => {
            assert.equal(next.error, undefined);
            const sending = next.recording.registrations
                .filter((r) => /^(103|101|102|1001|1002)-(feature-|app$)/.test(r.name))
                .map((r) => `replace ${r.name} [stdin, triggers]`);
            assert.deepEqual(ops(next), sending);
            assert.deepEqual(next.changes.find((c) => c.name === "900-feature-base_setup")!.ignored, ["stdin", "triggers"], "held back by ignoreChanges");
        });

        it("the program warns that the template is stale, with the command that rebuilds it; and keeps warning until then", async () => {
            const warning =
                "guest 900 is a template built with steps that have changed since (feature-base_setup): a template's steps do not run again, so it stays as built, " +
                "and its clones run the current steps themselves. To rebuild it: add 900 to phoenix:allowReplace (pulumi config set --path 'phoenix:allowReplace[0]' 900), " +
                `then pulumi up --replace '${TEMPLATE_URN}'`;
            const stale = (r: RunResult) => r.warnings.filter((w) => !w.includes("without a checksum"));
            assert.deepEqual(stale(next), [warning]);
            const again = await twinUp({ ...edited, prior: next.state });
            assert.deepEqual([ops(again), stale(again)], [[], [warning]]);
        });

        it("rebuilding the template replaces 900 and its steps only: its clones' machines are not condemned with it", async () => {
            const refused = await twinUp({ ...edited, prior: next.state, replace: [TEMPLATE_URN] });
            assert.match(refused.error!, /^unable to replace resource ".*::900-ct"\nas it is currently marked for protection/, "protected: asked for in so many words only");
            const rebuilt = await twinUp({ ...edited, config: { ...edited.config, "phoenix:allowReplace": [900] }, prior: next.state, replace: [TEMPLATE_URN] });
            assert.equal(rebuilt.error, undefined);
            // Deleted ahead of the container (delete before replace), as resources deleted with it.
            const children = ["lxc-conf", "fw-options", "fw-rules", "start", "feature-base_setup", "template"].map((r) => `replace 900-${r} [deletedWith]`);
            assert.deepEqual(ops(rebuilt).sort(), ["replace 900-ct [--replace]", ...children].sort());
            assert.deepEqual(rebuilt.warnings.filter((w) => !w.includes("without a checksum")), []);
            assert.equal(rebuilt.state.node.guests.get(900)!.template, true);
        });
    });

    describe("no silent data loss", () => {
        const urn = (name: string, kind = "LxcGuest$proxmoxve:index/containerLegacy:ContainerLegacy") => `urn:pulumi:dev::phoenix::phoenix:index:${kind}::${name}`;
        const edit101 = (f: (t: string) => string) => catalogCopy({ "101-nginx-phoenix.yaml": f });
        const machineChange = (r: RunResult, name: string) => r.changes.find((c) => c.name === name)!;

        // A container's move to another node is refused before anything runs, by the program (components/placement.ts,
        // test/cluster.spec.ts), unless phoenix:allowReplace lists it; a VM's migrates (migrate: true).
        // (A clone's unprivileged is its source's: changing it is a catalog error, test/cloneSafety.spec.ts.)
        it("every change that would replace a container is refused while it is protected (the default): storage, mount points", async () => {
            const cases: [string, (t: string) => string, string[]][] = [
                ["storage", (t) => `${t}storage: fastData-lxc\n`, ["disk.datastoreId"]],
                ["mount points", (t) => t.replace("containerPath: /etc/nginx/ssl,", "containerPath: /etc/nginx/ssl, readOnly: true,"), ["mountPoints[1].readOnly"]],
            ];
            for (const [what, edit, fields] of cases) {
                const r = await twinUp({ ...devConfig({ "phoenix:catalog": edit101(edit) }), prior: first.state, mode: "plan" });
                const ct = machineChange(r, "101-ct");
                assert.deepEqual([ct.op, [...ct.fields].sort(), ct.refused?.split("\n")[0]], ["replace", [...fields].sort(), `unable to replace resource "${urn("101-ct")}"`], what);
                const up = await twinUp({ ...devConfig({ "phoenix:catalog": edit101(edit) }), prior: first.state });
                assert.equal(up.error, ct.refused, `${what}: pulumi up stops with it`);
                assert.equal(up.state.node.guests.get(101)!.disks[0].sizeGb, 32, `${what}: the container is still there`);
            }
        });

        it("a clone-field edit replaces nothing while the guest is not listed (ignoreChanges), and is reported as held back", async () => {
            const r = await twinUp({ ...devConfig({ "phoenix:catalog": edit101((t) => `${t}fullClone: false\n`) }), prior: first.state, mode: "plan" });
            const ct = machineChange(r, "101-ct");
            assert.deepEqual([ct.op, ct.ignored.includes("clone"), [...ct.held].sort(), ops(r)], ["same", true, ["clone.datastoreId", "clone.full"], []]);
        });

        it("listed in phoenix:allowReplace, the clone-field edit replaces the container (a linked clone now), and nothing else", async () => {
            const r = await twinUp({ ...devConfig({ "phoenix:catalog": edit101((t) => `${t}fullClone: false\n`), "phoenix:allowReplace": [101] }), prior: first.state });
            assert.equal(r.error, undefined);
            const ct = machineChange(r, "101-ct");
            assert.deepEqual([ct.op, [...ct.fields].sort(), ct.held], ["replace", ["clone.datastoreId", "clone.full"], []]);
            assert.ok(r.changes.filter((c) => c.op !== "same").every((c) => /^101-/.test(c.name)));
            assert.equal(r.recording.registrations.find((x) => x.name === "101-ct")!.inputs.clone.full, false);
        });

        it("listed in phoenix:allowReplace, a VM clone's storage change still moves its disks: clone.datastoreId stays held back", async () => {
            const dir = catalogCopy({ "1001-portainer.yaml": (t) => `${t}storage: fastData-vm\n` });
            const r = await twinUp({ ...devConfig({ "phoenix:catalog": dir, "phoenix:allowReplace": [1001] }), prior: first.state });
            assert.deepEqual(ops(r), ["update 1001-vm [disks[0].datastoreId, initialization.datastoreId] (reboot)"]);
            assert.deepEqual(r.changes.find((c) => c.name === "1001-vm")!.ignored, ["clone.datastoreId"]);
        });

        it("listed in phoenix:allowReplace, a VM's new clone source replaces it", async () => {
            const dir = catalogCopy({ "1002-drphoenix.yaml": (t) => t.replace(/cloneFrom: 9000/, "cloneFrom: 9000\nfullClone: false") });
            const held = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state, mode: "plan" });
            assert.deepEqual([machineChange(held, "1002-vm").op, machineChange(held, "1002-vm").held], ["same", ["clone.full", "clone.datastoreId"]]);
            const r = await twinUp({ ...devConfig({ "phoenix:catalog": dir, "phoenix:allowReplace": [1002] }), prior: first.state });
            assert.equal(r.error, undefined);
            assert.deepEqual([machineChange(r, "1002-vm").op, machineChange(r, "1002-vm").fields], ["replace", ["clone.full"]]);
        });

        it("listed in phoenix:allowReplace, the replacement runs, its steps with it, and nothing of any other guest", async () => {
            const dir = edit101((t) => `${t}storage: fastData-lxc\n`);
            const r = await twinUp({ ...devConfig({ "phoenix:catalog": dir, "phoenix:allowReplace": [101] }), prior: first.state });
            assert.equal(r.error, undefined);
            const changed = r.changes.filter((c) => c.op !== "same");
            assert.ok(changed.every((c) => /^101-/.test(c.name)), changed.map((c) => c.name).join());
            assert.deepEqual(ops({ changes: changed.filter((c) => c.name === "101-ct") }), ["replace 101-ct [clone.datastoreId, disk.datastoreId]"], "listed, the clone block is no longer held back");
            const steps = r.recording.registrations.filter((x) => x.parent.endsWith("::101") && x.name !== "101-ct" && !/-(subids|host-dirs)$/.test(x.name));
            assert.deepEqual(changed.filter((c) => c.name !== "101-ct").map((c) => c.name).sort(), steps.map((x) => x.name).sort(), "every step on the container runs again");
            assert.equal(r.state.node.guests.get(101)!.disks[0].storage, "fastData-lxc");
        });

        it("a guest removed from the selection is not deleted while protected; pulumi up stops saying how to unprotect it", async () => {
            const selection = { "phoenix:guests": [900, 103, 101, 102, 9000, 1001] };
            const r = await twinUp({ ...devConfig(selection), prior: first.state });
            const vm = urn("1002-vm", "VmGuest$proxmoxve:index/vmLegacy:VmLegacy");
            assert.equal(r.error, `resource "${vm}" cannot be deleted\nbecause it is protected. To unprotect the resource, either remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\`, or use the command:\n\`pulumi state unprotect '${vm}'\``);
            assert.ok(r.state.node.guests.has(1002), "the VM is still there");
            assert.deepEqual(r.state.resources.filter((x) => /^1002/.test(x.name)).map((x) => x.name), ["1002", "1002-vm"], "its steps left the state (deleted with it), the VM and its component stay");
        });

        it("the protection workflow: allowReplace while still selected lifts it (no other change), then the removal deletes", async () => {
            const lifted = await twinUp({ ...devConfig({ "phoenix:allowReplace": [1002] }), prior: first.state });
            assert.deepEqual([ops(lifted), lifted.state.resources.find((x) => x.name === "1002-vm")!.protect], [[], false]);
            const removed = await twinUp({ ...devConfig({ "phoenix:allowReplace": [1002], "phoenix:guests": [900, 103, 101, 102, 9000, 1001] }), prior: lifted.state });
            assert.equal(removed.error, undefined);
            assert.ok(removed.changes.filter((c) => c.op !== "same").every((c) => c.op === "delete" && /^1002(-|$)/.test(c.name)));
            assert.deepEqual(removed.changes.filter((c) => c.op === "delete" && c.runs.length > 0), [], "its steps are deleted with the VM: no delete command runs");
            assert.equal(removed.state.node.guests.has(1002), false);
        });

        it("every run with protected guests says what Pulumi's protect flag is here and the command that lifts it (pulumi up cannot be made to say it)", async () => {
            const all = await recordDev();
            assert.deepEqual(all.notices, [
                "Phoenix protects the containers and VMs of guests 101, 102, 103, 900, 1001, 1002, 9000: pulumi up refuses to replace or delete them " +
                    '("marked for protection", "because it is protected"). The protect flag such a refusal mentions is Phoenix\'s stack value phoenix:allowReplace: ' +
                    "to let the next up replace or delete guest ID, run pulumi config set --path 'phoenix:allowReplace[0]' ID (e.g. 101), then pulumi up; " +
                    "npm run plan -- --since REF shows beforehand what would be refused (README: Protection).",
            ]);
            const listed = await recordDev({ "phoenix:allowReplace": [101, 1002] });
            assert.match(listed.notices[0], /^Phoenix protects the containers and VMs of guests 102, 103, 900, 1001, 9000: /);
            const none = await recordDev({ "phoenix:allowReplace": [900, 103, 101, 102, 9000, 1001, 1002] });
            assert.deepEqual(none.notices, [], "nothing protected, nothing to say");
        });

        it("the notice names at most twelve guests and counts the rest", () => {
            assert.match(protectionNotice(Array.from({ length: 1000 }, (_, i) => 2000 - i))!, /^Phoenix protects the containers and VMs of guests 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012 and 988 more: /);
            assert.equal(protectionNotice([]), undefined);
        });

        it("phoenix:allowReplace takes guest IDs, and says so otherwise, before any resource", async () => {
            const bad = await recordDev({ "phoenix:allowReplace": ["web"] });
            assert.equal(bad.error?.message, 'stack config phoenix:allowReplace: expected guest IDs (integers), received "web"');
            assert.equal(bad.registrations.length, 0);
            const notList = await recordDev({ "phoenix:allowReplace": 101 });
            assert.equal(notList.error?.message, "stack config phoenix:allowReplace: expected a list of guest IDs, e.g. [101], received 101");
        });

        it("a VM storage change moves its disks in place (no re-clone); the provider power-cycles it", async () => {
            const dir = catalogCopy({ "1001-portainer.yaml": (t) => `${t}storage: fastData-vm\n` });
            const r = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
            assert.deepEqual(ops(r), ["update 1001-vm [disks[0].datastoreId, initialization.datastoreId] (reboot)"]);
            assert.deepEqual(r.changes.find((c) => c.name === "1001-vm")!.ignored, ["clone"]);
            assert.equal(r.state.node.guests.get(1001)!.disks[0].storage, "fastData-vm");
        });
    });

    describe("a clone has what its own catalog says, nothing more", () => {
        it("no raw lxc.* line, apparmor profile or firewall rule of its source survives in a clone that does not declare it", async () => {
            const dir = catalogCopy({ "102-traefik-internal.yaml": (t) => t.replace("apparmorProfile: unconfined\n", "") });
            const r = await twinUp(devConfig({ "phoenix:catalog": dir }));
            assert.equal(r.error, undefined);
            const node = r.state.node.guests;
            assert.deepEqual(node.get(900)!.raw, ["lxc.apparmor.profile: unconfined"], "the source has it");
            assert.deepEqual([node.get(102)!.raw, node.get(103)!.raw, node.get(101)!.raw], [[], ["lxc.apparmor.profile: unconfined"], ["lxc.apparmor.profile: unconfined", "lxc.mount.auto: sys:rw"]]);
            const rules = (id: number) => (node.get(id)!.firewall.rules as { comment?: string }[]).map((x) => x.comment);
            const own = (id: number) => unwrapSecrets(r.recording.registrations.find((x) => x.name === `${id}-fw-rules`)!.inputs.rules).map((x: { comment?: string }) => x.comment);
            assert.equal(rules(900).length, 2);
            for (const id of [103, 101, 102]) assert.deepEqual(rules(id), own(id), `${id}: its own rules, none of 900's`);
        });

        it("dropping a raw line later removes it from the config (reconciled, not appended)", async () => {
            const dir = catalogCopy({ "101-nginx-phoenix.yaml": (t) => t.replace(/rawLxc:\n {2}- .*\n/, "") });
            const r = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
            assert.deepEqual(ops(r), ["replace 101-lxc-conf [create, triggers]"]);
            assert.deepEqual(r.state.node.guests.get(101)!.raw, ["lxc.apparmor.profile: unconfined"]);
        });
    });

    describe("linked clones and downloads", () => {
        it("a linked clone (fullClone: false) is created without a target storage, which Proxmox refuses for linked clones, and then stays unchanged", async () => {
            const dir = catalogCopy({
                "101-nginx-phoenix.yaml": (t) => `${t}fullClone: false\n`,
                "1002-drphoenix.yaml": (t) => `${t}fullClone: false\n`,
            });
            const r = await deploy({ "phoenix:catalog": dir });
            assert.deepEqual(unwrapSecrets(r.up.recording.registrations.find((x) => x.name === "101-ct")!.inputs.clone), { vmId: 900, nodeName: "phoenix", full: false });
            assert.deepEqual(unwrapSecrets(r.up.recording.registrations.find((x) => x.name === "1002-vm")!.inputs.clone), { vmId: 9000, nodeName: "phoenix", full: false, retries: 3 });
            assert.equal(r.up.state.node.guests.get(101)!.disks[0].storage, "quickOS-lxc-disks");
            assert.deepEqual(ops(await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: r.state })), []);
        });

        it("a linked clone on another storage than its source's is a catalog error at fullClone", () => {
            const dir = catalogCopy({ "101-nginx-phoenix.yaml": (t) => `${t}fullClone: false\nstorage: fastData-lxc\n` });
            assert.throws(() => loadCatalog({ dir, node: "pve", baseDir: ROOT }), (e: CatalogError) =>
                /101-nginx-phoenix\.yaml:\d+:\d+ fullClone: a linked clone lives on its source's storage \(quickOS-lxc-disks\), not fastData-lxc: set storage: quickOS-lxc-disks, or fullClone: true to copy the disk to fastData-lxc/.test(e.message));
        });

        it("pinning the cloud image's checksum later downloads it again, and replaces nothing else (the template took the image at creation only)", async () => {
            const dir = catalogCopy({ "defaults.yaml": (t) => t.replace("fileName: noble-server-cloudimg-amd64.qcow2", `fileName: noble-server-cloudimg-amd64.qcow2\n  checksum: ${"ab12".repeat(16)}\n  checksumAlgorithm: sha256`) });
            const r = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
            assert.equal(r.error, undefined);
            assert.deepEqual(ops(r), ["replace 9000-image [checksum, checksumAlgorithm]"]);
            assert.deepEqual(r.changes.find((c) => c.name === "9000-image")!.deleteFirst, true);
            assert.ok(!r.warnings.some((w) => w.includes("without a checksum")), "verified: no warning");
            const half = catalogCopy({ "defaults.yaml": (t) => t.replace("fileName: noble-server-cloudimg-amd64.qcow2", `fileName: noble-server-cloudimg-amd64.qcow2\n  checksum: ${"ab12".repeat(16)}`) });
            assert.throws(() => loadCatalog({ dir: half, node: "pve", baseDir: ROOT }), /defaults\.yaml:\d+:\d+ cloudImage\.checksumAlgorithm: required with checksum/);
            const failed = await twinUp({ ...devConfig({ "phoenix:catalog": half }), prior: first.state });
            assert.deepEqual([ops(failed), failed.state.resources.length], [[], first.state.resources.length], "a program that fails deletes nothing");
        });
    });
});

describe("provider twin: the full installation (GPU containers)", () => {
    const full = readStackConfig("full");
    const fullConfig = (catalog?: string) => ({ config: { ...full.config, ...(catalog ? { "phoenix:catalog": catalog } : {}) }, secretKeys: full.secretKeys, stack: "full" });
    let deployed: StackState;
    before(async () => {
        const up = await twinUp(fullConfig());
        assert.equal(up.error, undefined, up.error);
        deployed = refresh(up.state).state;
    });

    it("a GPU change updates the container in place, and the provider reboots the running container for it (CT:3920)", async () => {
        const dir = catalogCopy({ "801-granite-embedding.yaml": (t) => t.replace(/^gpus: \[ 0 \]$/m, "gpus: [ 1 ]") }, "guests-full");
        const r = await twinUp({ ...fullConfig(dir), prior: deployed });
        assert.equal(r.error, undefined);
        assert.deepEqual(ops(r), ["update 801-ct [devicePassthroughs[3].path] (reboot)"]);
        assert.equal(r.changes.find((c) => c.name === "801-ct")!.rules[0].cite, "bpg container.go:3889-3921 in place, reboot CT:3920 (entries past a shorter list stay)");
    });
});
