// Values the original states with the wrong kind of value (memory_mb: "lots", unprivileged: "yes", a name that is no
// host name). The importer cannot know what was meant, and a default would silently size, expose or privilege a
// guest differently from anything the user wrote; the original failed on such a value too (pct set --memory lots).
// So such a value is never read as missing and never replaced: it is reported as invalid, with what was received and
// what is expected, and written as received under its catalog key, where the catalog check refuses it at its line
// until the user states the value. (A key that is absent is another matter: the original took it from its defaults,
// and so does originalDefaults.ts, with a report line.)
import { Hostname } from "../../catalog/fields";
import { showValue } from "../../catalog/problems";
import { type Note, type Obj, note } from "./model";
import { at, num } from "./source";

/** The kinds of value the original's keys hold. */
export type Expect = "count" | "text" | "boolean";

/** Absent to the original: its jq lookups read null and "" as missing (and then looked elsewhere). */
export const absent = (v: unknown): boolean => v === undefined || v === null || v === "";

/** Whether a present value is of the kind the key holds (its range is the catalog's to check). */
const fits = (v: unknown, expect: Expect): boolean =>
    expect === "count" ? num(v) !== undefined : expect === "text" ? typeof v === "string" : typeof v === "boolean";

/** A key of the original, the catalog fields it becomes, and what it must hold (for the report). */
interface Checked {
    key: string;
    catalog: string[][];
    expect: Expect;
    what: string;
}

const WHOLE = "a whole number";
const COMMON: Checked[] = [
    { key: "network_config.ip", catalog: [["network", "ip"]], expect: "text", what: 'an address with its prefix length ("10.0.0.5/24") or "dhcp"' },
    { key: "network_config.gw", catalog: [["network", "gateway"]], expect: "text", what: "the gateway's IPv4 address" },
    { key: "network_config.bridge", catalog: [["network", "bridge"]], expect: "text", what: "a bridge name" },
    { key: "mac_address", catalog: [["network", "mac"]], expect: "text", what: "a MAC address" },
    { key: "storage_pool", catalog: [["storage"]], expect: "text", what: "a storage ID" },
    { key: "start_at_boot", catalog: [["startOnBoot"]], expect: "boolean", what: "true or false" },
    { key: "boot_order", catalog: [["startup", "order"]], expect: "count", what: `the startup order, ${WHOLE}` },
];

const LXC: Checked[] = [
    ...COMMON,
    { key: "swap_mb", catalog: [["swapMb"]], expect: "count", what: `swap in MiB, ${WHOLE}` },
    { key: "unprivileged", catalog: [["unprivileged"]], expect: "boolean", what: "true or false" },
    { key: "clone_from_ctid", catalog: [["cloneFrom"]], expect: "count", what: "the ID of the container to clone" },
    { key: "boot_delay", catalog: [["startup", "upDelay"], ["startup", "downDelay"]], expect: "count", what: `a delay in seconds, ${WHOLE}` },
];

const VM: Checked[] = [
    ...COMMON,
    { key: "network_bridge", catalog: [["network", "bridge"]], expect: "text", what: "a bridge name" },
    { key: "is_template", catalog: [["template"]], expect: "boolean", what: "true or false" },
    { key: "clone_from_vmid", catalog: [["cloneFrom"]], expect: "count", what: "the ID of the VM to clone" },
    { key: "boot_delay", catalog: [["startup", "upDelay"]], expect: "count", what: `a delay in seconds, ${WHOLE}` },
];

/** What the sizes the importer fills must hold (originalDefaults.ts). */
export const SIZE_EXPECTED: Record<string, string> = {
    cores: `CPU cores, ${WHOLE}`,
    memory_mb: `memory in MiB, ${WHOLE}`,
    storage_size_gb: `a disk size in GiB, ${WHOLE}`,
    disk_size_gb: `a disk size in GiB, ${WHOLE}`,
};

/** The report line of an invalid value: what was received, what was expected, what was written instead of a guess. */
export const invalidNote = (key: string, received: unknown, expected: string, catalogKey: string, from?: string): Note =>
    note("invalid", key,
        `${from ? `missing here; ${from} states` : "received"} ${showValue(received)}, expected ${expected}: written as received (${catalogKey}), so the catalog refuses ` +
        `it until you state the value; not replaced by a default, since the importer cannot know what was meant`);

/**
 * The value a size comes from, the way the original looked for it: undefined when absent here, the value when it is
 * of the right kind, or an invalid note's parts when it is not.
 */
export const checkedCount = (v: unknown): { value: number } | { invalid: unknown } | undefined =>
    absent(v) ? undefined : num(v) !== undefined ? { value: num(v)! } : { invalid: v };

/** A guest's name: undefined when absent; the name, or the received value with the reason it cannot be a host name. */
export const checkedName = (v: unknown): { name: string } | { invalid: unknown; expected: string } | undefined => {
    if (absent(v)) return undefined;
    if (typeof v !== "string") return { invalid: v, expected: "a host name (text)" };
    const r = Hostname.safeParse(v);
    return r.success ? { name: v } : { invalid: v, expected: r.error.issues[0].message.replace(/^expected /, "") };
};

const setAt = (o: Obj, path: string[], value: unknown): void => {
    let cur = o;
    for (const k of path.slice(0, -1)) cur = (cur[k] ??= {}) as Obj;
    cur[path[path.length - 1]] = value;
};

/**
 * Writes every checked key of a guest that holds the wrong kind of value as received, in place of whatever the
 * mapping made of it (nothing, or a default), and replaces the mapping's notes about the key with the invalid note.
 */
export const applyInvalid = (kind: "lxc" | "vm", raw: Obj, guest: Obj, notes: Note[]): void => {
    for (const c of kind === "lxc" ? LXC : VM) {
        const v = at(raw, c.key);
        if (absent(v) || fits(v, c.expect)) continue;
        for (const path of c.catalog) setAt(guest, path, v);
        const catalogKeys = c.catalog.map((p) => p.join("."));
        for (let i = notes.length - 1; i >= 0; i--) if (notes[i].key === c.key || catalogKeys.includes(notes[i].key)) notes.splice(i, 1);
        notes.push(invalidNote(c.key, v, c.what, catalogKeys.join(", ")));
    }
};
