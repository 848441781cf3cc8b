// Upgrading a deployed stack: the program of an older commit deploys through the provider twin (then the deploy
// workflow's refresh), and the current program's `pulumi up` runs against that state. Nothing a guest had may be lost
// on the way: above all not a clone's firewall, which the day-two work's new trigger form would otherwise clear again.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import { runConfig } from "../plan/plan";
import { forgetTree, materialize } from "../plan/since";
import { type RunResult, type StackState, refresh, twinUp } from "../plan/twin";
import { ROOT, devConfig, ops } from "./helpers";

/** The last commit before the day-two work (issue 15's head): its fw-reset step has no triggers and no update. */
const BEFORE_DAY_TWO = "09c6335";

const hasCommit = (ref: string): boolean => spawnSync("git", ["cat-file", "-e", `${ref}^{commit}`], { cwd: ROOT }).status === 0;

/**
 * `pulumi up` of the dev stack with the program and data of `commit` on an empty stack, then `pulumi refresh`: the
 * state a deploy from that commit leaves. Its tree is extracted with git archive and shares this project's
 * node_modules (one @pulumi/pulumi); its modules are unloaded afterwards.
 */
const deployedAt = async (commit: string): Promise<StackState> => {
    const dir = materialize(commit);
    try {
        const up = await twinUp({ ...runConfig({}, dir), program: path.join(dir, "index") });
        assert.equal(up.error, undefined, `${commit} deploys: ${up.error}`);
        return refresh(up.state).state;
    } finally {
        forgetTree(dir);
    }
};

const CLONES = [103, 101, 102, 1001, 1002];

/** Each clone's firewall as the node has it: whether enabled, its input policy and its rules. */
const firewalls = (s: StackState) =>
    Object.fromEntries(CLONES.map((id) => {
        const fw = s.node.guests.get(id)!.firewall;
        return [id, { enabled: fw.options?.enabled, inputPolicy: fw.options?.inputPolicy, rules: fw.rules.length }];
    }));

describe(`upgrading a stack deployed by ${BEFORE_DAY_TWO} (before the day-two work)`, function () {
    let prior: StackState;
    let up: RunResult;
    before(async function () {
        // A shallow clone lacks the commit (CI checks out with fetch-depth: 0).
        if (!hasCommit(BEFORE_DAY_TWO)) this.skip();
        prior = await deployedAt(BEFORE_DAY_TWO);
        up = await twinUp({ ...devConfig(), prior });
    });

    it("the first up does not run any clone's firewall reset again: it only records the step's new form", () => {
        assert.equal(up.error, undefined, up.error);
        for (const id of CLONES) {
            const reset = up.changes.find((c) => c.name === `${id}-fw-reset`)!;
            assert.deepEqual([reset.op, reset.runs.map((r) => r.ran)], ["update", ["update"]], `${id}-fw-reset: ${reset.op} [${reset.fields}]`);
            assert.deepEqual([reset.fields, reset.ignored], [["update"], ["triggers"]], `${id}-fw-reset keeps the triggers it ran with`);
        }
    });

    it("every clone's firewall survives on the node: its options as they were, its rules the catalog's", () => {
        const before = firewalls(prior);
        for (const id of CLONES) assert.ok(before[id].enabled === true && before[id].rules > 0, `${id} had its firewall before: ${JSON.stringify(before[id])}`);
        const after = firewalls(up.state);
        assert.deepEqual(CLONES.map((id) => [after[id].enabled, after[id].inputPolicy]), CLONES.map((id) => [before[id].enabled, before[id].inputPolicy]));
        for (const id of CLONES) {
            const declared = up.state.resources.find((r) => r.name === `${id}-fw-rules`)!.inputs.rules;
            assert.deepEqual(up.state.node.guests.get(id)!.firewall.rules, declared, `${id}: the node has the rules the program declares`);
            const rules = up.changes.find((c) => c.name === `${id}-fw-rules`)!;
            assert.ok(rules.op === "same" || rules.op === "update", `${id}-fw-rules: ${rules.op} (a changed rule list is updated in place)`);
        }
    });

    it("the following refresh reads no firewall change, and the preview after it changes nothing (the deploy workflow's expect-no-changes)", async () => {
        const r = refresh(up.state);
        // The one read: 101's disk as the clone's new resize step grew it (the provider stored the source's size).
        assert.deepEqual(ops(r), ["update 101-ct [disk.size]"]);
        const again = await twinUp({ ...devConfig(), prior: r.state });
        assert.deepEqual([again.error, ops(again)], [undefined, []]);
        assert.deepEqual(ops(refresh(again.state)), [], "the nightly drift check finds nothing either");
    });
});

describe("a clone's firewall on day two", function () {
    let deployed: StackState;
    before(async () => {
        const up = await twinUp(devConfig());
        assert.equal(up.error, undefined, up.error);
        deployed = refresh(up.state).state;
    });
    const urn = (name: string) => deployed.resources.find((r) => r.name === name)!.urn;

    it("an option changed on the node reads back, and the next up sets it again", async () => {
        const drifted = { ...deployed, node: deployed.node.clone() };
        drifted.node.guests.get(103)!.firewall.options!.enabled = false;
        const r = refresh(drifted);
        assert.deepEqual(ops(r), ["update 103-fw-options [enabled]"]);
        const up = await twinUp({ ...devConfig(), prior: r.state });
        assert.deepEqual([up.error, ops(up)], [undefined, ["update 103-fw-options [enabled]"]]);
        assert.equal(up.state.node.guests.get(103)!.firewall.options!.enabled, true);
    });

    it("a deleted firewall file reads as unchanged options (Proxmox returns none): why the reset never runs again by itself", () => {
        const wiped = { ...deployed, node: deployed.node.clone() };
        wiped.node.run("fw-reset", "rm -f /etc/pve/firewall/101.fw");
        assert.deepEqual(ops(refresh(wiped)), ["update 101-fw-rules [rules]"], "only the rules show; enabled still reads true");
    });

    it("a deliberate `pulumi up --replace` of the reset applies the options and rules again right after it", async () => {
        const up = await twinUp({ ...devConfig(), prior: deployed, replace: [urn("101-fw-reset")] });
        assert.equal(up.error, undefined, up.error);
        assert.deepEqual(ops(up), ["replace 101-fw-reset [--replace]", "replace 101-fw-options [replaceWith]", "replace 101-fw-rules [replaceWith]"]);
        const fw = up.state.node.guests.get(101)!.firewall;
        assert.deepEqual([fw.options?.enabled, fw.rules.length], [true, deployed.node.guests.get(101)!.firewall.rules.length]);
        assert.deepEqual(ops(refresh(up.state)), []);
    });
});
