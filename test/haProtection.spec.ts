// HA under the guest's protection: the engine deletes a guest's HA resources before its machine (Proxmox wants an
// HA-managed guest out of HA first), so a removal that the machine's protection refuses must not have taken the HA
// away already. Scenarios on the example cluster (Pulumi.cluster.yaml: 103 and 1001 under HA) through the twin.
import { strict as assert } from "assert";
import { runConfig } from "../plan/plan";
import { type StackState, refresh, twinUp } from "../plan/twin";
import { ops } from "./helpers";

const cluster = (config: Record<string, unknown> = {}) => runConfig({ stack: "cluster", config });
/** Every guest of the example cluster but 1001 (nothing depends on it). */
const without1001 = { "phoenix:selectAll": false, "phoenix:guests": [900, 9000, 103, 110, 111, 1002, 1003] };

describe("HA under the guest's protection (the example cluster)", function () {
    let deployed: StackState;
    before(async () => {
        const up = await twinUp(cluster());
        assert.equal(up.error, undefined, up.error);
        deployed = refresh(up.state).state;
    });
    const resource = (s: StackState, name: string) => s.resources.find((r) => r.name === name);

    it("a guest's HA resource and its node-affinity rule are protected as its machine is", () => {
        for (const name of ["1001-vm", "1001-ha", "103-ct", "103-ha", "103-ha-rule"]) assert.equal(resource(deployed, name)?.protect, true, name);
    });

    it("removing a protected guest under HA is refused before anything is deleted: it keeps its HA", async () => {
        const up = await twinUp({ ...cluster(without1001), prior: deployed });
        assert.match(up.error ?? "", /^resource "urn:pulumi:cluster::phoenix::phoenix:index:VmGuest\$proxmoxve:index\/haresource:Haresource::1001-ha" cannot be deleted\nbecause it is protected/);
        assert.deepEqual(up.changes.filter((c) => c.op === "delete" && !c.refused), [], "nothing deleted");
        assert.ok(resource(up.state, "1001-ha") && resource(up.state, "1001-vm"), "HA and VM stay in the state");
        const preview = await twinUp({ ...cluster(without1001), prior: deployed, mode: "plan" });
        const refused = preview.changes.filter((c) => c.op === "delete" && c.refused).map((c) => c.name);
        assert.deepEqual(refused, ["1001-ha", "1001-vm"], "the preview says both are refused");
    });

    it("the protection workflow lifts it from both, and the removal then deletes the HA resource before the VM", async () => {
        const lifted = await twinUp({ ...cluster({ "phoenix:allowReplace": [1001] }), prior: deployed });
        assert.deepEqual([ops(lifted), resource(lifted.state, "1001-ha")!.protect, resource(lifted.state, "1001-vm")!.protect], [[], false, false]);
        const removed = await twinUp({ ...cluster({ ...without1001, "phoenix:allowReplace": [1001] }), prior: lifted.state });
        assert.equal(removed.error, undefined, removed.error);
        const order = removed.changes.filter((c) => c.op === "delete").map((c) => c.name);
        assert.ok(order.indexOf("1001-ha") >= 0 && order.indexOf("1001-ha") < order.indexOf("1001-vm"), order.join(", "));
        assert.equal(removed.state.node.guests.has(1001), false);
    });
});
