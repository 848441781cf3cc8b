// Mappings containers and VMs share: network, boot order, dependencies, Traefik service, and the notes for keys the
// original never used.
import type { ImportContext } from "./context";
import { type Note, type Obj, compact, note } from "./model";
import { type SecretScope, SECRET_KEY, recordSecret } from "./secrets";
import { isObj, num, str } from "./source";
import { absent } from "./invalid";

/** "10.0.0.13", "10.0.0.13 8.8.8.8" or ["10.0.0.13"] -> a list. */
export const nameserverList = (v: unknown): string[] | undefined => {
    if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string" && x !== "");
    const s = str(v);
    return s ? s.split(/[\s,]+/).filter(Boolean) : undefined;
};

export const mapDependencies = (raw: Obj, notes: Note[]): number[] | undefined => {
    if (raw.dependencies === undefined) return undefined;
    const ids = listOf(raw, "dependencies", notes).map(num).filter((n): n is number => n !== undefined);
    if (ids.length > 0) notes.push(note("changed", "dependencies", "dependsOn (numbers; the original stored strings, so its restart-dependents code never matched)"));
    return ids.length > 0 ? ids : undefined;
};

/** Traefik routes: containers got http:// backends in the original, VMs https://; TLS services keep https. */
export const mapTraefikService = (raw: Obj, kind: "lxc" | "vm", tls: boolean, notes: Note[]): Obj | undefined => {
    const t = raw.traefik_service;
    if (!isObj(t)) return undefined;
    const name = str(t.name);
    const port = num(t.port);
    if (!name || port === undefined) {
        notes.push(note("dropped", "traefik_service", "needs a name and a port"));
        return undefined;
    }
    if (kind === "lxc" && tls) {
        notes.push(note("changed", "traefik_service",
            `scheme https: the original's generated route used http:// for containers, which is wrong for this TLS service (port ${port})`));
        return { name, port };
    }
    return kind === "lxc" ? { name, port, scheme: "http" } : { name, port };
};

export const mapNetwork = (raw: Obj, ctx: ImportContext, kind: "lxc" | "vm", notes: Note[]): Obj => {
    const net = isObj(raw.network_config) ? raw.network_config : {};
    const d = ctx.defaults.network as Obj;
    const ip = str(net.ip) ?? "dhcp";
    if (absent(net.ip)) notes.push(note("added", "network_config.ip", "missing: imported as dhcp"));
    const bridge = str(net.bridge);
    const nsKey = kind === "lxc" ? "nameservers" : "nameserver";
    const nameservers = nameserverList(net[nsKey]);
    if (nameservers && typeof net[nsKey] === "string") {
        if (kind === "vm" && ctx.nodeIp && nameservers.join() !== ctx.nodeIp) {
            notes.push(note("changed", `network_config.${nsKey}`, `now applied; the original ignored it and forced ${ctx.nodeIp} on every VM`));
        } else {
            notes.push(note("changed", `network_config.${nsKey}`, "a list (nameservers) instead of a string"));
        }
    } else if (!nameservers && kind === "lxc") {
        notes.push(note("added", "network_config.nameservers", "not set (the container used the node's resolv.conf); defaults.yaml network.nameservers now applies"));
    }
    if (net.name !== undefined && net.name !== "eth0") notes.push(note("changed", "network_config.name", `${String(net.name)}: the interface is always eth0/net0`));
    for (const k of Object.keys(net).filter((k) => !["name", "bridge", "ip", "gw", nsKey, "searchdomain"].includes(k))) {
        notes.push(note("dropped", `network_config.${k}`, "not a key the original applied"));
    }
    const searchDomain = str(net.searchdomain);
    return compact({
        ip,
        gateway: ip === "dhcp" ? undefined : str(net.gw),
        mac: str(raw.mac_address),
        bridge: bridge && bridge !== d.bridge ? bridge : undefined,
        nameservers,
        searchDomain: searchDomain && searchDomain !== d.searchDomain ? searchDomain : undefined,
    });
};

/**
 * start_at_boot / boot_order / boot_delay. Containers got up and down delays, VMs only the up delay. The original's
 * own tests ordered guests by `execution_order` (its code read boot_order): both are Proxmox's startup order, the
 * order in which the node starts guests at boot and in a bulk start; neither orders provisioning (dependsOn does).
 */
export const mapBoot = (raw: Obj, kind: "lxc" | "vm", notes: Note[]): { startOnBoot?: boolean; startup?: Obj } => {
    const boot = num(raw.boot_order);
    const execution = num(raw.execution_order);
    if (execution !== undefined) {
        notes.push(boot === undefined
            ? note("changed", "execution_order", `startup.order: ${execution} (Proxmox starts guests in ascending order at node boot and in a bulk start; provisioning order comes from dependsOn)`)
            : note("dropped", "execution_order", `${execution}: boot_order ${boot} is the startup order`));
    }
    const order = boot ?? execution;
    const delay = num(raw.boot_delay) ?? 0;
    return {
        startOnBoot: typeof raw.start_at_boot === "boolean" ? raw.start_at_boot : undefined,
        startup: order === undefined ? undefined : kind === "lxc" ? { order, upDelay: delay, downDelay: delay } : { order, upDelay: delay },
    };
};

/** Keys the original read only in `phoenix sync all`, LetsGo or nowhere: not guest configuration here. */
export const UNUSED_KEYS: Record<string, string> = {
    portainer_role: "used only by `phoenix sync all` (Portainer), which is not part of this project",
    portainer_environment_name: "used only by `phoenix sync all` (Portainer), which is not part of this project",
    portainer_agent_hostname: "used only by `phoenix sync all` (Portainer and DNS), which is not part of this project",
    docker_stacks: "Docker stacks are deployed by `phoenix sync all` (Portainer), not part of this project; the original also added each stack's firewall rules (stacks/<name>/phoenix.json): add the ones this guest needs to firewall.rules",
    dns_records: "never read by the original",
    trigger_sync_on_completion: "read only by `phoenix LetsGo` to start `sync all`",
    ports: "never read by the original",
    tests: "never read by the original",
    count: "never read by the original",
    qm_options: "never read by the original",
    gpu_assignment: "none: no GPU to pass through",
};

/** A value that must be a list when present: anything else is reported (not silently read as an empty list). */
export const listOf = (raw: Obj, key: string, notes: Note[], keyPath = key): unknown[] => {
    const v = raw[key];
    if (v === undefined) return [];
    if (Array.isArray(v)) return v;
    const what = v === null ? "null" : typeof v === "object" ? "an object" : `a ${typeof v}`;
    notes.push(note("dropped", keyPath, `not a list (${what}): nothing imported from it`));
    return [];
};

/** Keys no mapping reads are dropped with the reason; a secret-looking one is reported as a secret to set. */
export const reportUnknownKeys = (raw: Obj, handled: readonly string[], notes: Note[], secrets: SecretScope): void => {
    for (const k of Object.keys(raw)) {
        if (handled.includes(k)) continue;
        if (SECRET_KEY.test(k)) {
            recordSecret(secrets, k, raw[k]);
            continue;
        }
        const why = UNUSED_KEYS[k];
        notes.push(note("dropped", k, why ?? "not a key the original read"));
    }
};
