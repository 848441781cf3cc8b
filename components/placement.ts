// Where the stack's containers are now, read from Proxmox (not from Pulumi state, which the program cannot see), so
// that a container the catalog puts on another node is not silently destroyed and re-created there: the provider
// cannot migrate a container (its nodeName forces a replacement, bpg container.go), so a move is refused with the
// command to migrate it by hand, unless the stack lists the guest in phoenix:allowReplace. The same check catches a
// container HA has relocated. VMs need none of this: their node changes are migrations (VmLegacy migrate).
import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import type { LxcSpec } from "../catalog/model";
import { shq } from "./shell";

/**
 * The refusal, with what to do about it. pct migrate moves a container's volumes, but refuses a bind mount that is not
 * marked shared (pve-container src/PVE/LXC/Migrate.pm:66-73): its host directories are copied by hand, and the mount
 * points marked shared for the move only (the catalog's are not, and a changed mount point would replace the container).
 */
export const moveRefusal = (spec: LxcSpec, at: string): string => {
    const { id, node: to } = spec;
    const local = spec.bindMounts.map((b, i) => ({ ...b, key: `mp${i}` })).filter((b) => !b.shared);
    const keys = local.map((b) => b.key).join("|");
    const conf = `/etc/pve/lxc/${id}.conf`;
    const cmd = (line: string) => `\n       ${line}`;
    const steps = local.length === 0
        ? [`on ${at}: pct migrate ${id} ${to} --restart   (under HA: ha-manager migrate ct:${id} ${to})`]
        : [
              `on ${at}: pct shutdown ${id}, then copy its host directories to the same paths on ${to}` +
                  `${spec.ha ? ` (under HA: ha-manager set ct:${id} --state ignored first, and --state started after step 3)` : ""}:` +
                  local.map((b) => cmd(`rsync -aHAX --numeric-ids ${shq(`${b.hostPath}/`)} root@${to}:${shq(`${b.hostPath}/`)}`)).join(""),
              `on ${at}: mark its bind mounts shared for the move (Proxmox refuses to migrate a local bind mount), then migrate it:` +
                  cmd(`sed -i -E '/^(${keys}): /s/$/,shared=1/' ${conf}`) + cmd(`pct migrate ${id} ${to}`),
              `on ${to}: unmark them (the catalog's are not shared), then start it:` + cmd(`sed -i -E '/^(${keys}): /s/,shared=1$//' ${conf}`) + cmd(`pct start ${id}`),
          ];
    return [
        `guest ${id}: the container is on node ${at}, and ${spec.file} puts it on ${to}. The provider cannot migrate a container: ` +
            `it would destroy it and create it anew on ${to}, losing its data. To move it:`,
        ...[...steps, `point the stack's state at ${to} (README: "Moving a container"), then run pulumi up again.`].map((step, i) => `  ${i + 1}. ${step}`),
        `Or leave it on ${at} (node: ${at}), or list ${id} in stack config phoenix:allowReplace to destroy it and re-create it on ${to}.`,
    ].join("\n");
};

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
