// Facts about the whole installation that single guests need: the domain, which guest is the CA and which the
// Traefik proxy (their addresses replace values the original hard-coded), which guests are clone sources, and the
// defaults (a guest omits what equals them).
import type { ScriptLibrary } from "../../catalog/scripts";
import type { Obj } from "./model";
import { type PhoenixSource, at, isObj, num, str } from "./source";

export interface ImportContext {
    source: PhoenixSource;
    scripts: ScriptLibrary;
    domain: string;
    /** The guest running the step_ca feature, whose root certificate trusted_ca and traefik consume. */
    ca?: { id: number; ip?: string };
    /** Address of the guest running the traefik feature (the nginx gateway proxies to it). */
    traefikIp?: string;
    /** IDs that other guests clone from. */
    cloneSources: Set<number>;
    /** The defaults being written: a guest value equal to its default is omitted. */
    defaults: Obj;
    /** The node's own address: the nameserver the original forced on every VM. */
    nodeIp?: string;
    /** Values of the secrets removed from the guests (secrets.ts): the writer refuses any file containing one. */
    secretValues: string[];
}

export const ipOf = (raw: Obj, key = "network_config.ip"): string | undefined => str(at(raw, key))?.split("/")[0];

const featuresOf = (raw: Obj): string[] => (Array.isArray(raw.features) ? raw.features.filter((f): f is string => typeof f === "string") : []);

export const buildContext = (source: PhoenixSource, scripts: ScriptLibrary, defaults: Obj): ImportContext => {
    const all: { id: number; raw: Obj }[] = [...source.lxcs, ...source.vms.map((raw) => ({ id: raw.vmid as number, raw }))];
    const caGuest = all.find((g) => featuresOf(g.raw).includes("step_ca"));
    const traefikGuest = all.find((g) => featuresOf(g.raw).includes("traefik"));
    const cloneSources = new Set<number>();
    for (const { raw } of all) {
        const src = num(raw.clone_from_ctid) ?? num(raw.clone_from_vmid);
        if (src !== undefined) cloneSources.add(src);
    }
    const hv = source.hypervisor;
    return {
        source,
        scripts,
        domain: str(hv.domain_name) ?? "internal",
        ca: caGuest ? { id: caGuest.id, ip: ipOf(caGuest.raw) } : undefined,
        traefikIp: traefikGuest ? ipOf(traefikGuest.raw) : undefined,
        cloneSources,
        defaults,
        nodeIp: str(at(hv, "network.interfaces.address"))?.split("/")[0],
        secretValues: [],
    };
};

/** Scripts a guest's features and application need that features/ does not have. */
export const missingScripts = (ctx: ImportContext, guest: Obj): string[] => {
    const names = Array.isArray(guest.features) ? guest.features.map((f) => (typeof f === "string" ? f : (f as Obj).name as string)) : [];
    const missing = names.filter((n) => !ctx.scripts.feature(n)).map((n) => `features/${n}.sh`);
    const app = isObj(guest.application) ? (guest.application.script as string) : undefined;
    if (app && !ctx.scripts.application(app)) missing.push(`features/apps/${app}.sh`);
    return [...new Set(missing)];
};
