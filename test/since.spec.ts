// npm run plan -- --since REF: the change preview. The git side (a ref materialised or matched against the working
// tree) through the CLI; what the preview reports through changeAgainst with a prior state deployed by the twin.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
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
        assert.deepEqual(Object.keys(j.summary), ["create", "update", "replace", "delete", "refused", "guestsReplaced", "guestsDeleted", "guestsHeld"]);
        for (const c of j.changes) {
            const extra = c.op === "ignored" ? ["needsReplacement"] : "held" in c ? ["held"] : [];
            assert.deepEqual(Object.keys(c), ["resource", "type", "op", "fields", ...extra]);
        }
    });

    it("extracts REF with git archive when its program code differs, runs REF's own program, and says when nothing changes", async function () {
        if (spawnSync("git", ["rev-parse", "--verify", "HEAD"], { cwd: ROOT }).status !== 0) this.skip();
        // REF: the working tree as it is, with one comment more in components/context.ts (so REF's code differs), made
        // as a commit whose objects go to a temporary object directory: the repository is left as it was.
        const objects = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-since-objects-"));
        const index = path.join(objects, "index");
        const saved = { dir: process.env.GIT_OBJECT_DIRECTORY, alt: process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES };
        const git = (args: string[], input?: string, env: Record<string, string> = {}) => {
            const r = spawnSync("git", args, { cwd: ROOT, input, env: { ...process.env, ...env }, encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
            return r.stdout.trim();
        };
        try {
            const common = path.resolve(ROOT, git(["rev-parse", "--git-common-dir"]), "objects");
            process.env.GIT_OBJECT_DIRECTORY = objects;
            process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES = common;
            const withIndex = { GIT_INDEX_FILE: index };
            git(["read-tree", "HEAD"], undefined, withIndex);
            git(["add", "-A", "."], undefined, withIndex);
            const file = "components/context.ts";
            const blob = git(["hash-object", "-w", "--stdin"], `${fs.readFileSync(path.join(ROOT, file), "utf8")}// the change preview's test: REF's own code\n`);
            git(["update-index", "--cacheinfo", `100644,${blob},${file}`], undefined, withIndex);
            const commit = git(["commit-tree", git(["write-tree"], undefined, withIndex), "-m", "since.spec"], undefined, { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@localhost", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@localhost" });
            const r = await cli("--since", commit);
            assert.equal(r.code, 0, r.err);
            const lines = r.out.split("\n");
            assert.equal(lines[1], `  prior state: the program at ${commit} (REF's code) deployed through the provider twin: pulumi up, then pulumi refresh as the deploy workflow does`);
            assert.match(r.out, /^No guest's container or VM is replaced or deleted\.\n\nNo changes: pulumi up would change nothing \(\d+ resources unchanged\)\.$/m);
            assert.doesNotMatch(r.out, /^Changes:|^Steps that run again|^Guests the provider reboots|^Simulated makespan/m);
        } finally {
            if (saved.dir === undefined) delete process.env.GIT_OBJECT_DIRECTORY;
            else process.env.GIT_OBJECT_DIRECTORY = saved.dir;
            if (saved.alt === undefined) delete process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES;
            else process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES = saved.alt;
            fs.rmSync(objects, { recursive: true, force: true });
        }
    });

    it("counts what the providers act on: a guest's component is no resource, a refused operation no delete", async () => {
        const p = await changeAgainst(prior, from, { guests: [900, 103, 101, 102, 9000, 1001] });
        const deleted = p.changes.filter((c) => c.op === "delete");
        assert.deepEqual([p.summary.delete, p.summary.refused], [deleted.filter((c) => c.custom && !c.refused).length, 1]);
        assert.deepEqual(deleted.filter((c) => !c.custom || c.refused).map((c) => c.name).sort(), ["1002", "1002-vm"]);
        const unchanged = p.all.filter((c) => c.op === "same" && c.custom).length;
        assert.match(renderChangeText(p), new RegExp(`^Changes: 0 to create, 0 to update, 0 to replace, ${p.summary.delete} to delete, 1 refused \\(${unchanged} unchanged\\)$`, "m"));
        const same = await changeAgainst(prior, from, {});
        assert.match(renderChangeText(same), new RegExp(`^No changes: pulumi up would change nothing \\(${same.all.filter((c) => c.custom).length} resources unchanged\\)\\.$`, "m"));
    });

    it("names each source range a reason cites: VM:7256-7266, 7025-7040 (not VM:7256-7266,,)", async () => {
        const dir = catalogCopy({ "1001-portainer.yaml": (t) => `${t}storage: fastData-vm\n` });
        const text = renderChangeText(await changeAgainst(prior, from, { catalog: dir }));
        assert.match(text, /^ {4}~ {2}1001-vm +update +disks\[0\]\.datastoreId, initialization\.datastoreId; the provider reboots the guest \(VM:7256-7266, 7025-7040, VM:6592-6685, 7008-7012\)$/m);
    });

    it("reads a stack that keeps a secret Pulumi.yaml does not declare (a VM's cloud-init password): the plan and the preview run, the ciphertext never read", async () => {
        const catalog = catalogCopy({ "1001-portainer.yaml": (t) => t.replace("  user: phoenix_user\n", "  user: phoenix_user\n  passwordSecret: vmPassword\n") });
        const file = path.join(ROOT, "Pulumi.zz-undeclared-secret.yaml");
        const dev = fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8").replace("  phoenix:catalog: guests\n", `  phoenix:catalog: ${catalog}\n`);
        fs.writeFileSync(file, `${dev}  phoenix:vmPassword:\n    secure: v1:Y2lwaGVydGV4dA==\n`);
        try {
            const plan = await cli("--stack", "zz-undeclared-secret", "--json");
            assert.equal(plan.code, 0, plan.err);
            const vm = JSON.parse(plan.out).guests.find((g: { id: number }) => g.id === 1001);
            assert.ok(vm, "1001 is planned");
            const preview = await cli("--stack", "zz-undeclared-secret", "--since", "HEAD");
            assert.equal(preview.code, 0, preview.err);
            assert.match(preview.out, /^Changes: \d+ to create/m);
            assert.match(preview.out, /^ {2}guest 1001: the cloud-init password \(stack config vmPassword\) is set once/m);
            for (const out of [plan.out, plan.err, preview.out, preview.err]) assert.ok(!out.includes("v1:Y2lwaGVydGV4dA=="), "the ciphertext is never read");
        } finally {
            fs.rmSync(file);
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
