// What a clone cannot be, given its source (checked on the resolved catalog, before any resource): smaller than its
// source (a clone starts as a full copy of the source's disk, and neither a container's nor a VM's disk shrinks), a
// linked clone on another storage (Proxmox refuses a target storage for linked clones, and the clone shares its
// source's base volume), or a container that is privileged where its source is unprivileged or the other way round
// (pct clone copies `unprivileged` with the rest of the config, pve-container API2/LXC.pm:2118-2121, and the provider
// never sends it for a clone, bpg container.go:1260-1343; it reads it back when the catalog says true,
// container.go:3366-3378, so every later up would want to replace the container, and while it says false nothing
// would ever show that the container is unprivileged after all).
import type { GuestSpec } from "./model";
import type { Problem } from "./problems";
import type { YamlSource } from "./yamlSource";

export const checkClones = (guests: ReadonlyMap<number, GuestSpec>, sourceOf: (id: number) => YamlSource): Problem[] => {
    const problems: Problem[] = [...checkBindMountSources(guests, sourceOf)];
    for (const g of guests.values()) {
        const src = g.cloneFrom !== undefined ? guests.get(g.cloneFrom) : undefined;
        if (!src || src.kind !== g.kind || !src.template) continue; // reported by the reference checks
        const at = sourceOf(g.id);
        if (g.diskGb < src.diskGb) {
            problems.push(at.problemAt(["diskGb"],
                `${g.diskGb} GB is smaller than the root disk of its clone source ${src.id} (${src.diskGb} GB); a clone starts as a copy of it and a disk cannot shrink: set diskGb to ${src.diskGb} or more`));
        }
        if (g.kind === "lxc" && src.kind === "lxc" && g.unprivileged !== src.unprivileged) {
            const kind = (unprivileged: boolean) => (unprivileged ? "unprivileged" : "privileged");
            const declared = typeof at.data === "object" && at.data !== null && "unprivileged" in at.data;
            problems.push(at.problemAt([declared ? "unprivileged" : "cloneFrom"],
                `${g.id} would be ${kind(src.unprivileged)} like its clone source ${src.id} (pct clone copies unprivileged, and the provider cannot change it), ` +
                `but the catalog makes it ${kind(g.unprivileged)}${declared ? "" : " (the default)"}: ` +
                (src.unprivileged ? `set unprivileged: true (the default)${g.privilegedReason ? " and drop privilegedReason" : ""}` : "set unprivileged: false with a privilegedReason") +
                ` to match ${src.id}, clone ${g.unprivileged ? "an" : "a"} ${kind(g.unprivileged)} template instead, or leave out cloneFrom to create ${g.id} from its OS template`));
        }
        if (!g.fullClone && g.storage !== src.storage) {
            problems.push(at.problemAt(["fullClone"],
                `a linked clone lives on its source's storage (${src.storage}), not ${g.storage}: set storage: ${src.storage}, or fullClone: true to copy the disk to ${g.storage}`));
        }
    }
    return problems;
};

/**
 * pct clone copies a container's volumes but dies on a bind or device mount point: "unable to clone mountpoint 'mp0'
 * (type bind)" (pve-container API2/LXC.pm:2107-2109). So a container template that others clone has none; each clone
 * declares the host directories it needs (the provider adds them to the clone after cloning). Reported once, at the
 * template's bindMounts, where the fix is.
 */
const checkBindMountSources = (guests: ReadonlyMap<number, GuestSpec>, sourceOf: (id: number) => YamlSource): Problem[] => {
    const clonesOf = new Map<number, number[]>();
    for (const g of guests.values()) {
        const src = g.cloneFrom !== undefined ? guests.get(g.cloneFrom) : undefined;
        if (g.kind === "lxc" && src?.kind === "lxc" && src.template && src.bindMounts.length > 0) clonesOf.set(src.id, [...(clonesOf.get(src.id) ?? []), g.id]);
    }
    return [...clonesOf].map(([id, clones]) =>
        sourceOf(id).problemAt(["bindMounts"],
            `${id} is the clone source of ${clones.join(", ")}, and Proxmox cannot clone a container with a bind mount ` +
                `("unable to clone mountpoint 'mp0' (type bind)"): move these bind mounts to the clones that need them (each clone declares its own bindMounts), ` +
                `or create ${clones.length === 1 ? "that guest" : "those guests"} from an OS template instead of cloning ${id}`, true));
};
