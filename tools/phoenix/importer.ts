// The import, without side effects beyond reading: the original's three files in, catalog objects and notes out.
import * as path from "path";
import { PROJECT_ROOT } from "../../catalog/load";
import { ScriptLibrary } from "../../catalog/scripts";
import { buildContext } from "./context";
import { hypervisorNotes, mapDefaults } from "./defaults";
import { mapLxc } from "./lxc";
import type { ImportResult } from "./model";
import { repairGpuShares } from "./gpuShares";
import { repairRoutes } from "./routes";
import { readSource } from "./source";
import { mapVm } from "./vm";

export interface ImportOptions {
    /** Where the feature scripts are, to report the ones a guest needs and this project lacks. Default: features/. */
    featuresDir?: string;
    /** The Proxmox node the original ran on: the key of defaults.yaml nodes (its GPUs). Default: phoenix. */
    node?: string;
}

export const importPhoenix = (fromDir: string, opts: ImportOptions = {}): ImportResult => {
    const source = readSource(fromDir);
    const scripts = new ScriptLibrary(opts.featuresDir ?? path.join(PROJECT_ROOT, "features"));
    const { defaults, notes: defaultsNotes } = mapDefaults(source, opts.node);
    const ctx = buildContext(source, scripts, defaults);
    const vmsById = new Map(source.vms.map((v) => [v.vmid as number, v]));
    const guests = [...source.lxcs.map(({ id, raw }) => mapLxc(id, raw, ctx)), ...source.vms.map((raw) => mapVm(raw, ctx, vmsById))];
    const { notes: globalNotes, secretValues } = hypervisorNotes(source);
    const result = { from: fromDir, defaults, defaultsNotes, globalNotes, guests, secretValues: [...new Set([...secretValues, ...ctx.secretValues])] };
    repairGpuShares(result, scripts);
    repairRoutes(result, opts.featuresDir);
    return result;
};
