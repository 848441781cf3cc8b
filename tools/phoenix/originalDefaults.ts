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
// A value of the wrong kind (memory_mb: "lots") is not missing: it is reported as invalid and written as received,
// never replaced by one of these defaults (invalid.ts says why).
import type { ImportContext } from "./context";
import { SIZE_EXPECTED, checkedCount, checkedName, invalidNote } from "./invalid";
import { type Note, type Obj, note } from "./model";
import { at, num } from "./source";

/** The template disk size the original hard-coded (qm resize scsi0 32G), whatever the config said. */
export const TEMPLATE_DISK_GB = 32;

/** pct create's own defaults and the provider's cores default: the last resort for a container. */
const CONTAINER_FALLBACK = { cores: 1, memory_mb: 512, storage_size_gb: 4 } as const;

export interface FilledSizes {
    /** The name for the file and the report: the guest's, or ct<id>/vm<id> when it has none or an invalid one. */
    name: string;
    /** The name written into the guest: the name, or the invalid value as received. */
    written: unknown;
    cores?: unknown;
    memoryMb?: unknown;
    diskGb?: unknown;
}

type LxcKey = keyof typeof CONTAINER_FALLBACK;

/** A size as found: its value, where it came from (undefined: the guest states it), and whether it is invalid. */
interface Found {
    value: unknown;
    from?: string;
    invalid?: boolean;
}

/** The first place in `places` that states the key: its value if it is a count, else the invalid value. */
const firstStated = (places: { value: unknown; from: string | undefined }[]): Found | undefined => {
    for (const { value, from } of places) {
        const c = checkedCount(value);
        if (c) return "value" in c ? { value: c.value, from } : { value: c.invalid, from, invalid: true };
    }
    return undefined;
};

/** The places a container's key is looked up in, the way the original looked (see the top of this file). */
const containerPlaces = (ctx: ImportContext, id: number, raw: Obj, key: LxcKey): { value: unknown; from: string | undefined }[] => {
    const places: { value: unknown; from: string | undefined }[] = [{ value: raw[key], from: undefined }];
    const seen = new Set([id]);
    for (let src = num(raw.clone_from_ctid); src !== undefined && !seen.has(src); ) {
        seen.add(src);
        const source = ctx.source.lxcs.find((l) => l.id === src)?.raw;
        if (!source) break;
        places.push({ value: source[key], from: `its clone source ${src}'s (a clone keeps its source's configuration)` });
        src = num(source.clone_from_ctid);
    }
    places.push({ value: ctx.source.lxcRoot[key], from: "the root of phoenix_lxc_configs.json (the original read a missing key there)" });
    places.push({ value: at(ctx.source.hypervisor, `proxmox_defaults.lxc.${key}`), from: "phoenix_hypervisor_config.json proxmox_defaults.lxc" });
    return places;
};

/** A container's value for key, the way the original found it, and where from. */
const containerValue = (ctx: ImportContext, id: number, raw: Obj, key: LxcKey): Found =>
    firstStated(containerPlaces(ctx, id, raw, key)) ?? {
        value: CONTAINER_FALLBACK[key],
        from: key === "cores" ? "the provider's default (Proxmox's own would be every core of the node)" : "pct create's default",
    };

/** The note for a found size: none when the guest states a valid one; "added" when filled; "invalid" when invalid. */
const sizeNote = (key: string, catalogKey: string, f: Found, notes: Note[]): unknown => {
    if (f.invalid) notes.push(invalidNote(key, f.value, SIZE_EXPECTED[key], catalogKey, f.from));
    else if (f.from) notes.push(note("added", key, `missing: ${catalogKey} ${String(f.value)} from ${f.from}`));
    return f.value;
};

/**
 * name, cores, memory and disk of a guest, with the original's defaults filled in where the guest left them out;
 * one "added" note per filled value, one "invalid" note per value of the wrong kind (written as received).
 */
export const fillOriginalDefaults = (kind: "lxc" | "vm", id: number, raw: Obj, ctx: ImportContext, notes: Note[]): FilledSizes => {
    const fallbackName = `${kind === "lxc" ? "ct" : "vm"}${id}`;
    const checked = checkedName(raw.name);
    if (!checked) notes.push(note("added", "name", `missing (the original failed without it): imported as ${fallbackName}`));
    else if ("invalid" in checked) notes.push(invalidNote("name", checked.invalid, checked.expected, "name"));
    const name = checked && "name" in checked ? checked.name : fallbackName;
    const written = checked && "invalid" in checked ? checked.invalid : name;
    if (kind === "vm") {
        const vmd = ctx.source.vmDefaults;
        const vmValue = (key: "cores" | "memory_mb", catalogKey: string): unknown => {
            const f = firstStated([{ value: raw[key], from: undefined }, { value: vmd[key], from: "vm_defaults" }]);
            if (!f) return undefined;
            if (f.invalid) return sizeNote(key, catalogKey, f, notes);
            if (f.from) notes.push(note("added", key, `${String(f.value)} from vm_defaults`));
            return f.value;
        };
        return { name, written, cores: vmValue("cores", "cores"), memoryMb: vmValue("memory_mb", "memoryMb"), diskGb: vmDisk(id, raw, ctx, notes) };
    }
    const filled = (key: LxcKey, catalogKey: string): unknown => sizeNote(key, catalogKey, containerValue(ctx, id, raw, key), notes);
    return { name, written, cores: filled("cores", "cores"), memoryMb: filled("memory_mb", "memoryMb"), diskGb: filled("storage_size_gb", "diskGb") };
};

/**
 * A VM's disk: the template's is the 32 GiB the original hard-coded; a clone without its own keeps its template's
 * (the original never resized clones); a VM that is neither gets vm_defaults.disk_size_gb (the original made no disk).
 * A size the original ignored and that is now applied is reported as changed; one of the wrong kind as invalid.
 */
const vmDisk = (id: number, raw: Obj, ctx: ImportContext, notes: Note[]): unknown => {
    const ownChecked = checkedCount(raw.disk_size_gb);
    if (ownChecked && "invalid" in ownChecked) return sizeNote("disk_size_gb", "diskGb", { value: ownChecked.invalid, invalid: true }, notes);
    const own = ownChecked?.value;
    const cloneFrom = num(raw.clone_from_vmid);
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
    const defaults = checkedCount(ctx.source.vmDefaults.disk_size_gb);
    if (defaults && "invalid" in defaults) return sizeNote("disk_size_gb", "diskGb", { value: defaults.invalid, from: "vm_defaults.disk_size_gb", invalid: true }, notes);
    const d = defaults?.value ?? TEMPLATE_DISK_GB;
    notes.push(note("added", "diskGb", `${d} from ${defaults ? "vm_defaults.disk_size_gb" : "the original's template disk size"} (the original created no disk for a VM that is neither a template nor a clone)`));
    return d;
};
