// What a clone cannot be, given its source (checked on the resolved catalog, before any resource): smaller than its
// source (a clone starts as a full copy of the source's disk, and neither a container's nor a VM's disk shrinks), or a
// linked clone on another storage (Proxmox refuses a target storage for linked clones, and the clone shares its
// source's base volume).
import type { GuestSpec } from "./model";
import type { Problem } from "./problems";
import type { YamlSource } from "./yamlSource";

export const checkClones = (guests: ReadonlyMap<number, GuestSpec>, sourceOf: (id: number) => YamlSource): Problem[] => {
    const problems: Problem[] = [];
    for (const g of guests.values()) {
        const src = g.cloneFrom !== undefined ? guests.get(g.cloneFrom) : undefined;
        if (!src || src.kind !== g.kind || !src.template) continue; // reported by the reference checks
        const at = sourceOf(g.id);
        if (g.diskGb < src.diskGb) {
            problems.push(at.problemAt(["diskGb"],
                `${g.diskGb} GB is smaller than the root disk of its clone source ${src.id} (${src.diskGb} GB); a clone starts as a copy of it and a disk cannot shrink: set diskGb to ${src.diskGb} or more`));
        }
        if (!g.fullClone && g.storage !== src.storage) {
            problems.push(at.problemAt(["fullClone"],
                `a linked clone lives on its source's storage (${src.storage}), not ${g.storage}: set storage: ${src.storage}, or fullClone: true to copy the disk to ${g.storage}`));
        }
    }
    return problems;
};
