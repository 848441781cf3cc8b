// npm run plan -- --since REF: the change preview. The git side (a ref materialised or matched against the working
// tree) through the CLI; what the preview reports through changeAgainst with a prior state deployed by the twin.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import { main } from "../plan/cli";
import { changeJson, renderChangeText } from "../plan/renderSince";
import { type ChangePlan, changeAgainst, deployed } from "../plan/since";
import { type StackState, emptyState, twinUp } from "../plan/twin";
import { loadLatencyModel } from "../plan/latency";
import { ROOT, catalogCopy, devConfig } from "./helpers";

const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = "";
    let err = "";
    const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
};

const from = { ref: "test", commit: "0000000000", refProgram: "working tree code" as const };

describe("plan --since", function () {
    let prior: StackState;
    before(async () => {
        prior = await deployed(() => twinUp(devConfig()), "the dev stack");
    });

    it("previews against a git ref: the plan's JSON plus exactly changes (resource, type, op, fields) and summary", async function () {
        // Needs a git checkout (a copy of the files, as npm run mutate-edges makes, has no HEAD).
        if (spawnSync("git", ["rev-parse", "--verify", "HEAD"], { cwd: ROOT }).status !== 0) this.skip();
        // HEAD against whatever the working tree holds right now: the shape is checked, not the content.
        const r = await cli("--since", "HEAD", "--json");
        assert.ok(r.code === 0 || r.code === 1, r.err);
        const j = JSON.parse(r.out);
        assert.ok(Array.isArray(j.waves) && Array.isArray(j.guests) && typeof j.simulation === "object", "the working tree's plan document");
        assert.deepEqual(Object.keys(j.summary), ["create", "update", "replace", "delete", "guestsReplaced", "guestsDeleted", "guestsHeld"]);
        for (const c of j.changes) {
            const extra = c.op === "ignored" ? ["needsReplacement"] : "held" in c ? ["held"] : [];
            assert.deepEqual(Object.keys(c), ["resource", "type", "op", "fields", ...extra]);
        }
    });

    it("refuses what it cannot preview: an unknown ref, and flags that belong to a first up", async () => {
        const bad = await cli("--since", "no-such-ref-anywhere");
        assert.equal(bad.code, 2);
        assert.match(bad.err, /--since no-such-ref-anywhere: not a commit in this repository \(fetch it first, e.g. git fetch origin main\)/);
        const clash = await cli("--since", "HEAD", "--fail", "103:feature-step_ca");
        assert.equal(clash.code, 2);
        assert.match(clash.err, /--since previews a change; --fail belong to the plan of a first pulumi up/);
        assert.match((await cli("--since", "-x")).err, /--since needs a value|expected a git ref/);
    });

    it("groups the operations by guest with their fields, says which steps run again and which guests reboot", async () => {
        const dir = catalogCopy({ "103-step-ca.yaml": (t) => t.replace("memoryMb: 1024", "memoryMb: 2048") });
        const p = await changeAgainst(prior, from, { catalog: dir });
        const text = renderChangeText(p);
        assert.match(text, /^No guest's container or VM is replaced or deleted\.$/m);
        assert.match(text, /^  103 Step-CA\n    ~  103-ct +update {3}memory\.dedicated; the provider reboots the guest \(CT:3885\)$/m);
        assert.match(text, /^Guests the provider reboots: 103 \(memory\.dedicated\)$/m);
        assert.match(text, /^Simulated makespan of the change \(only the operations that run\): 7 s at unlimited parallelism, 7 s at --parallel 4 \(the deploy workflow\)$/m);
    });

    it("shows a clone-field edit that pulumi up holds back (ignoreChanges), with the command that carries it out; listed, it is a replacement", async () => {
        const dir = catalogCopy({ "101-nginx-phoenix.yaml": (t) => `${t}fullClone: false\n`, "1001-portainer.yaml": (t) => `${t}storage: fastData-vm\n` });
        const p = await changeAgainst(prior, from, { catalog: dir });
        const text = renderChangeText(p);
        assert.match(text, /^!!! NOT APPLIED: 1 guest's catalog asks for a new container or VM, which pulumi up holds back \(ignoreChanges\) and so does not do:$/m);
        assert.match(text, /^!!! {3}101 Nginx-Phoenix: 101-ct clone\.full, clone\.datastoreId cannot change in place \(CT:239,246,255,268\); the guest stays as it was made$/m);
        assert.match(text, /^!!! {5}To carry it out \(a new container, its disks lost\): add 101 to phoenix:allowReplace \(pulumi config set --path 'phoenix:allowReplace\[0\]' 101\), then pulumi up; or undo the edit\.$/m);
        const j = changeJson(p) as { changes: Record<string, unknown>[]; summary: ChangePlan["summary"] };
        assert.deepEqual(j.changes.filter((c) => c.op === "ignored"), [{ resource: "101-ct", type: "proxmoxve:index/containerLegacy:ContainerLegacy", op: "ignored", fields: ["clone.full", "clone.datastoreId"], needsReplacement: true }]);
        assert.deepEqual(j.summary.guestsHeld, [101], "the VM's storage change moves its disks: nothing held for 1001");
        const allowed = await changeAgainst(prior, from, { catalog: dir, config: { "phoenix:allowReplace": [101] } });
        assert.deepEqual([allowed.held, allowed.summary.guestsReplaced, allowed.changes.find((c) => c.name === "101-ct")!.fields], [[], [101], ["clone.full", "clone.datastoreId"]]);
        assert.doesNotMatch(renderChangeText(allowed), /NOT APPLIED/);
    });

    it("simulates the change with the plan's limits: from an empty stack it costs what the plan of a first up costs, per-node limit included", async () => {
        const model = loadLatencyModel();
        for (const perNode of [model.limits.concurrent_heavy_steps_per_node, 1]) {
            const limited = { ...model, limits: { ...model.limits, concurrent_heavy_steps_per_node: perNode } };
            const p = await changeAgainst(emptyState(), from, { model: limited });
            assert.deepEqual([p.makespan.unlimited, p.makespan.deploy], [p.plan.makespans.unlimited, p.plan.makespans.deploy], `at most ${perNode} heavy steps per node`);
        }
    });

    it("calls out a guest whose machine would be deleted before anything else, and counts it", async () => {
        const p: ChangePlan = await changeAgainst(prior, from, { guests: [900, 103, 101, 102, 9000, 1001] });
        const j = changeJson(p) as { changes: { resource: string; op: string }[]; summary: ChangePlan["summary"] };
        assert.deepEqual(j.summary.guestsDeleted, [1002]);
        assert.ok(j.changes.every((c) => c.op === "delete" && /^1002(-|$)/.test(c.resource)), JSON.stringify(j.changes.filter((c) => !/^1002/.test(c.resource))));
        const text = renderChangeText(p);
        const first = text.split("\n").findIndex((l) => l.startsWith("!!!"));
        assert.equal(first, 3, "right after the header");
        assert.match(text, /^!!!   1002: 1002-vm DELETED: no longer in the selection or the catalog$/m);
    });

    it("says a protected replacement is refused and exactly how to allow it; pulumi up would stop", async () => {
        const dir = catalogCopy({ "101-nginx-phoenix.yaml": (t) => `${t}storage: fastData-lxc\n` });
        const p = await changeAgainst(prior, from, { catalog: dir });
        assert.deepEqual(p.summary.guestsReplaced, [101]);
        const text = renderChangeText(p);
        assert.match(text, /^!!! DATA LOSS: 1 guest's container or VM would be REPLACED, and every disk on it with it:\n!!!   101 Nginx-Phoenix: 101-ct REPLACED: disk\.datastoreId cannot change in place \(CT:412\)\n/m);
        assert.match(text, /^!!!     REFUSED by pulumi up: it is protected\. To allow it, add 101 to phoenix:allowReplace \(pulumi config set --path 'phoenix:allowReplace\[0\]' 101\), or set protect: false in its catalog file\.$/m);
        assert.match(text, /^pulumi up would stop: unable to replace resource ".*::101-ct"$/m);
    });
});
