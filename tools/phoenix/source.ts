// Reads the original's three configuration files and checks the shape the importer relies on. A missing file, bad
// JSON or a wrong shape is an ImportError naming the file and the key, never a stack trace.
import * as fs from "fs";
import * as path from "path";
import { ImportError, type Obj, fsCall, printable } from "./model";

export const SOURCE_FILES = {
    lxc: "phoenix_lxc_configs.json",
    vm: "phoenix_vm_configs.json",
    hypervisor: "phoenix_hypervisor_config.json",
} as const;

export interface PhoenixSource {
    dir: string;
    /** Root of phoenix_lxc_configs.json; lxcs are its lxc_configs entries in file order. */
    lxcRoot: Obj;
    lxcs: { id: number; raw: Obj }[];
    vmRoot: Obj;
    vmDefaults: Obj;
    vms: Obj[];
    hypervisor: Obj;
}

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const readJson = (dir: string, file: string): Obj => {
    const p = path.join(dir, file);
    if (!fs.existsSync(p)) throw new ImportError(`no ${file} in ${dir}; --from must name the original's etc/ directory (it holds ${Object.values(SOURCE_FILES).join(", ")})`);
    const text = fsCall("cannot read", p, () => fs.readFileSync(p, "utf8"));
    let data: unknown;
    try {
        data = JSON.parse(text);
    } catch (e) {
        throw new ImportError(`${file}: not valid JSON (${printable((e as Error).message)})`);
    }
    if (!isObj(data)) throw new ImportError(`${file}: expected a JSON object at the top level`);
    return data;
};

export const readSource = (dir: string): PhoenixSource => {
    if (!fs.existsSync(dir) || !fsCall("cannot access", dir, () => fs.statSync(dir)).isDirectory()) throw new ImportError(`--from ${dir}: not a directory`);
    const lxcRoot = readJson(dir, SOURCE_FILES.lxc);
    const vmRoot = readJson(dir, SOURCE_FILES.vm);
    const hypervisor = readJson(dir, SOURCE_FILES.hypervisor);
    if (!isObj(lxcRoot.lxc_configs)) throw new ImportError(`${SOURCE_FILES.lxc}: lxc_configs: expected an object of containers by ID`);
    const lxcs = Object.entries(lxcRoot.lxc_configs).map(([key, raw]) => {
        if (!/^\d+$/.test(key)) throw new ImportError(`${SOURCE_FILES.lxc}: lxc_configs: key ${printable(JSON.stringify(key))}: expected a numeric container ID as the key`);
        if (!isObj(raw)) throw new ImportError(`${SOURCE_FILES.lxc}: lxc_configs.${key}: expected an object`);
        return { id: Number(key), raw };
    });
    if (!Array.isArray(vmRoot.vms)) throw new ImportError(`${SOURCE_FILES.vm}: vms: expected a list of VMs`);
    const vms = vmRoot.vms.map((raw, i) => {
        if (!isObj(raw) || !Number.isInteger(raw.vmid)) throw new ImportError(`${SOURCE_FILES.vm}: vms[${i}]: expected an object with an integer vmid`);
        return raw;
    });
    const vmDefaults = isObj(vmRoot.vm_defaults) ? vmRoot.vm_defaults : {};
    return { dir, lxcRoot, lxcs, vmRoot, vmDefaults, vms, hypervisor };
};

/** A value at a dotted path of an object, or undefined. */
export const at = (o: unknown, dotted: string): unknown =>
    dotted.split(".").reduce<unknown>((v, k) => (isObj(v) ? v[k] : undefined), o);

export const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
export const num = (v: unknown): number | undefined =>
    typeof v === "number" && Number.isFinite(v) ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : undefined;
