// Values a guest of the original left out and the original took from somewhere else: the one place the importer
// fills them, each with a report line naming where the value came from. The original's own test configurations
// (tiny guests with only `dependencies` or `execution_order`) import and plan through this.
//
// Where the original got a missing value, in the order it looked:
//   containers: a clone keeps its source's value (pct clone copies the source's config); a key missing in a guest was
//     read from the root of phoenix_lxc_configs.json (jq_get_value's fallback, phoenix-reference §2.0); the hypervisor
//     file's proxmox_defaults.lxc states the installation's container defaults; past those, pct create's defaults
//     applied (memory 512 MiB, rootfs 4 GiB: pve-container src/PVE/API2/LXC.pm:527, src/PVE/LXC/Config.pm:594-606)
//     and the provider's for cores (1).
//   VMs: vm_defaults (cores, memory_mb); the template disk the original hard-coded (32 GiB), which clones kept.
import type { ImportContext } from "./context";
import { type Note, type Obj, note } from "./model";
import { at, num, str } from "./source";

/** The template disk size the original hard-coded (qm resize scsi0 32G), whatever the config said. */
export const TEMPLATE_DISK_GB = 32;

/** pct create's own defaults and the provider's cores default: the last resort for a container. */
const CONTAINER_FALLBACK = { cores: 1, memory_mb: 512, storage_size_gb: 4 } as const;

export interface FilledSizes {
    name: string;
    cores?: number;
    memoryMb?: number;
    diskGb?: number;
}

type LxcKey = keyof typeof CONTAINER_FALLBACK;

/** A container's value for key, the way the original found it, and where from (undefined: the guest states it). */
const containerValue = (ctx: ImportContext, id: number, raw: Obj, key: LxcKey): { value: number; from?: string } => {
    const own = num(raw[key]);
    if (own !== undefined) return { value: own };
    const seen = new Set([id]);
    for (let src = num(raw.clone_from_ctid); src !== undefined && !seen.has(src); ) {
        seen.add(src);
        const source = ctx.source.lxcs.find((l) => l.id === src)?.raw;
        if (!source) break;
        const v = num(source[key]);
        if (v !== undefined) return { value: v, from: `its clone source ${src}'s (a clone keeps its source's configuration)` };
        src = num(source.clone_from_ctid);
    }
    const root = num(ctx.source.lxcRoot[key]);
    if (root !== undefined) return { value: root, from: "the root of phoenix_lxc_configs.json (the original read a missing key there)" };
    const declared = num(at(ctx.source.hypervisor, `proxmox_defaults.lxc.${key}`));
    if (declared !== undefined) return { value: declared, from: "phoenix_hypervisor_config.json proxmox_defaults.lxc" };
    return {
        value: CONTAINER_FALLBACK[key],
        from: key === "cores" ? "the provider's default (Proxmox's own would be every core of the node)" : "pct create's default",
    };
};

/**
 * name, cores, memory and disk of a guest, with the original's defaults filled in where the guest left them out;
 * one "added" note per filled value.
 */
export const fillOriginalDefaults = (kind: "lxc" | "vm", id: number, raw: Obj, ctx: ImportContext, notes: Note[]): FilledSizes => {
    const name = str(raw.name) ?? `${kind === "lxc" ? "ct" : "vm"}${id}`;
    if (!str(raw.name)) notes.push(note("added", "name", `missing (the original failed without it): imported as ${name}`));
    if (kind === "vm") {
        const vmd = ctx.source.vmDefaults;
        const cores = num(raw.cores) ?? num(vmd.cores);
        const memoryMb = num(raw.memory_mb) ?? num(vmd.memory_mb);
        if (raw.cores === undefined && cores !== undefined) notes.push(note("added", "cores", `${cores} from vm_defaults`));
        if (raw.memory_mb === undefined && memoryMb !== undefined) notes.push(note("added", "memory_mb", `${memoryMb} from vm_defaults`));
        return { name, cores, memoryMb, diskGb: vmDisk(id, raw, ctx, notes) };
    }
    const filled = (key: LxcKey, catalogKey: string): number => {
        const { value, from } = containerValue(ctx, id, raw, key);
        if (from) notes.push(note("added", key, `missing: ${catalogKey} ${value} from ${from}`));
        return value;
    };
    return { name, cores: filled("cores", "cores"), memoryMb: filled("memory_mb", "memoryMb"), diskGb: filled("storage_size_gb", "diskGb") };
};

/**
 * A VM's disk: the template's is the 32 GiB the original hard-coded; a clone without its own keeps its template's
 * (the original never resized clones); a VM that is neither gets vm_defaults.disk_size_gb (the original made no disk).
 * A size the original ignored and that is now applied is reported as changed.
 */
const vmDisk = (id: number, raw: Obj, ctx: ImportContext, notes: Note[]): number => {
    const cloneFrom = num(raw.clone_from_vmid);
    const own = num(raw.disk_size_gb);
    if (cloneFrom !== undefined) {
        const source = ctx.source.vms.find((v) => v.vmid === cloneFrom);
        const sourceDisk = source && !num(source.disk_size_gb) ? TEMPLATE_DISK_GB : num(source?.disk_size_gb) ?? TEMPLATE_DISK_GB;
        if (own === undefined) return sourceDisk;
        notes.push(note("changed", "disk_size_gb",
            own === sourceDisk ? `${own}: now applied (the original never resized clones; the template's ${sourceDisk}G was the same)` : `${own}: now applied; the original never resized clones, so this VM kept the template's ${sourceDisk}G`));
        return own;
    }
    if (raw.is_template === true || ctx.cloneSources.has(id)) {
        if (own !== undefined && own !== TEMPLATE_DISK_GB) notes.push(note("changed", "disk_size_gb", `${own}: now applied; the original always made the template disk ${TEMPLATE_DISK_GB}G`));
        if (own === undefined) notes.push(note("added", "diskGb", `${TEMPLATE_DISK_GB}: the size the original hard-coded for the template disk`));
        return own ?? TEMPLATE_DISK_GB;
    }
    if (own !== undefined) return own;
    const d = num(ctx.source.vmDefaults.disk_size_gb) ?? TEMPLATE_DISK_GB;
    notes.push(note("added", "diskGb", `${d} from ${num(ctx.source.vmDefaults.disk_size_gb) !== undefined ? "vm_defaults.disk_size_gb" : "the original's template disk size"} (the original created no disk for a VM that is neither a template nor a clone)`));
    return d;
};
