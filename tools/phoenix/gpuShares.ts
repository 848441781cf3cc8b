// The original let any set of vLLM servers share a GPU; the catalog refuses servers that run permanently on one GPU
// with shares above all of its memory (catalog/gpuShares.ts), because the last of them to start would fail: vLLM does
// not start without its share free. An installation the original ran that way is repaired here, not left for the
// catalog to refuse: the permanent servers of an overfull GPU are scaled by one factor, so that together they fit, and
// each change is reported (the user checks that each model still fits in its smaller share). Templates are left as
// they are: they stop once converted, and the GPU lanes order them.
import type { ScriptLibrary } from "../../catalog/scripts";
import { type ImportResult, type Obj, note } from "./model";

/** camelCase catalog parameter of an environment name (GPU_MEMORY_UTILIZATION -> gpuMemoryUtilization). */
const paramKey = (env: string): string => env.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

interface Server {
    guest: number;
    gpus: number[];
    share: number;
    stated: boolean;
    feature: string;
    key: string;
    /** Writes a new share into the feature's params (turning a bare feature name into an entry). */
    set(share: number): void;
}

/** The permanent GPU servers of the import: a feature whose script reserves a share, on a guest with GPUs that stays. */
const permanentServers = (r: ImportResult, scripts: ScriptLibrary): Server[] =>
    r.guests.flatMap((g) => {
        const { gpus, features } = g.guest;
        if (g.guest.template === true || !Array.isArray(gpus) || gpus.length === 0 || !Array.isArray(features)) return [];
        return (features as (string | Obj)[]).flatMap((f, i): Server[] => {
            const name = typeof f === "string" ? f : String(f.name);
            const gs = scripts.feature(name)?.gpuShare;
            if (!gs) return [];
            const key = paramKey(gs.param);
            const given = typeof f === "string" ? undefined : (f.params as Obj | undefined)?.[key];
            const set = (share: number) => {
                const entry = typeof f === "string" ? ((features as (string | Obj)[])[i] = { name }) : f;
                entry.params = { ...(entry.params as Obj | undefined), [key]: share };
            };
            return [{ guest: g.id, gpus: gpus as number[], share: typeof given === "number" ? given : gs.default, stated: typeof given === "number", feature: name, key, set }];
        });
    });

const hundredths = (x: number): number => Math.round(x * 100) / 100;

/** Scales the permanent servers of each overfull GPU to fit it, and reports each share it changes. */
export const repairGpuShares = (r: ImportResult, scripts: ScriptLibrary): void => {
    const servers = permanentServers(r, scripts);
    const gpus = [...new Set(servers.flatMap((s) => s.gpus))];
    const factor = new Map<Server, { by: number; why: string }>();
    for (const gpu of gpus) {
        const on = servers.filter((s) => s.gpus.includes(gpu));
        const total = hundredths(on.reduce((sum, s) => sum + s.share, 0));
        if (total <= 1) continue;
        const why = `the GPU servers that run permanently on GPU ${gpu} reserve ${on.map((s) => `${s.guest} ${s.share}`).join(" + ")} = ${total} of its memory, ` +
            "so the last to start would fail (a server such as vLLM does not start without its share free)";
        for (const s of on) if (!factor.has(s) || factor.get(s)!.by > 1 / total) factor.set(s, { by: 1 / total, why });
    }
    for (const [s, { by, why }] of factor) {
        const scaled = Math.max(0.01, Math.floor(s.share * by * 100) / 100);
        s.set(scaled);
        const g = r.guests.find((x) => x.id === s.guest)!;
        g.notes.push(note("changed", `features[${s.feature}].params.${s.key}`,
            `${s.share}${s.stated ? "" : " (the default)"} -> ${scaled}: ${why}; each is scaled by the same factor to fit together: check that this guest's model and context still fit in ${scaled} of the GPU`));
    }
};
