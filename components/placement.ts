// Where the stack's containers are now, read from Proxmox (not from Pulumi state, which the program cannot see), so
// that a container the catalog puts on another node is not silently destroyed and re-created there: the provider
// cannot migrate a container (its nodeName forces a replacement, bpg container.go), so a move is refused with the
// command to migrate it by hand, unless the stack lists the guest in phoenix:allowReplace. The same check catches a
// container HA has relocated. VMs need none of this: their node changes are migrations (VmLegacy migrate).
import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import type { LxcSpec } from "../catalog/model";

/** The refusal, with what to do about it. */
export const moveRefusal = (spec: LxcSpec, at: string): string =>
    [
        `guest ${spec.id}: the container is on node ${at}, and ${spec.file} puts it on ${spec.node}. The provider cannot migrate a container: ` +
            `it would destroy it and create it anew on ${spec.node}, losing its data. To move it:`,
        `  1. on ${at}: pct migrate ${spec.id} ${spec.node} --restart   (under HA: ha-manager migrate ct:${spec.id} ${spec.node})`,
        `  2. point the stack's state at ${spec.node} (README: "Moving a container"), then run pulumi up again.`,
        `Or leave it on ${at} (node: ${at}), or list ${spec.id} in stack config phoenix:allowReplace to destroy it and re-create it on ${spec.node}.`,
    ].join("\n");

export class ContainerPlacement {
    private where?: pulumi.Output<ReadonlyMap<number, string>>;

    constructor(
        private readonly provider: proxmox.Provider,
        private readonly allowReplace: ReadonlySet<number>,
    ) {}

    /** The container's nodeName input: the catalog's node, once Proxmox confirms the container is not on another. */
    nodeOf(spec: LxcSpec): pulumi.Output<string> {
        // One query for the whole stack (every Phoenix container carries the phoenix tag), made on first use.
        this.where ??= proxmox
            .getContainersLegacyOutput({ tags: ["phoenix"] }, { provider: this.provider })
            .apply((r) => new Map(r.containers.map((c) => [c.vmId, c.nodeName])));
        return this.where.apply((w) => {
            const at = w.get(spec.id);
            if (at === undefined || at === spec.node || this.allowReplace.has(spec.id)) return spec.node;
            throw new pulumi.RunError(moveRefusal(spec, at));
        });
    }
}
