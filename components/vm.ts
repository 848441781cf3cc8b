// phoenix:index:VmGuest (placeholder until the VM lifecycle lands: the VM itself only).
import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import type { VmSpec } from "../catalog/model";
import { TYPE_PREFIX } from "./context";
import { type GuestArgs, PhoenixGuest } from "./guest";

export class VmGuest extends PhoenixGuest {
    constructor(args: GuestArgs<VmSpec>, opts?: pulumi.ComponentResourceOptions) {
        super(`${TYPE_PREFIX}VmGuest`, args, opts);
        const spec = args.spec;
        const source = spec.cloneFrom !== undefined ? this.other(spec.cloneFrom, "clone source") : undefined;
        const vm = new proxmox.VmLegacy(`${spec.id}-vm`, {
            nodeName: spec.node, vmId: spec.id, name: spec.name, template: spec.template,
            clone: source ? { vmId: source.cloneSourceId, full: spec.fullClone } : undefined,
        }, { parent: this, deleteBeforeReplace: true });
        this.machine = vm;
        this.vmId = vm.vmId.apply((v) => v ?? spec.id);
        this.settle([vm], []);
    }
}
