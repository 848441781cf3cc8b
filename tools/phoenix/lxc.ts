// One container of phoenix_lxc_configs.json -> one catalog guest (kind: lxc).
import * as path from "path";
import { type ImportContext, ipOf, missingScripts } from "./context";
import { mapFirewall } from "./firewall";
import { listOf, mapBoot, mapDependencies, mapNetwork, mapTraefikService, reportUnknownKeys } from "./common";
import { type GuestImport, type Note, type Obj, compact, guestFileName, note } from "./model";
import { secretScope } from "./secrets";
import { isObj, num, str } from "./source";
import { mapApplication, mapFeatures, mapHealthCheck, stepPath } from "./steps";
import { fillOriginalDefaults } from "./originalDefaults";
import { applyInvalid } from "./invalid";

/** Keys this mapping reads (everything else is reported as dropped, with the reason). */
const HANDLED = [
    "name", "memory_mb", "cores", "swap_mb", "template", "storage_pool", "storage_size_gb", "network_config", "mac_address", "unprivileged",
    "clone_from_ctid", "template_snapshot_name", "features", "application_script", "pct_options", "lxc_options", "apparmor_profile",
    "apparmor_manages_nesting", "enable_lifecycle_snapshots", "firewall", "mount_points", "id_maps", "zfs_volumes", "volumes",
    "dependencies", "traefik_service", "health_check", "health_checks", "start_at_boot", "boot_order", "boot_delay", "bootstrap_ca_url",
    "vllm_engine_config", "execution_order",
];

/** The host directories the original chowned to root:root on every run (apply_secure_permissions, hard-coded IDs). */
const SECURED_SSL_GUESTS = [101, 102, 103];
const PERSISTENT = /^\/mnt\/pve\/quickOS\/lxc-persistent-data\/(\d+)\/ssl\/?$/;

/** A declared partial id map completed into full 65536-id maps (the rest shifted by Proxmox's default 100000). */
export const completeIdMaps = (declared: { type: "uid" | "gid"; containerId: number; hostId: number; size: number }[]): Obj[] =>
    (["uid", "gid"] as const).flatMap((type) => {
        const own = declared.filter((m) => m.type === type).sort((a, b) => a.containerId - b.containerId);
        const out: Obj[] = [];
        let next = 0;
        for (const m of own) {
            if (m.containerId > next) out.push({ type, containerId: next, hostId: 100000 + next, size: m.containerId - next });
            out.push({ type, containerId: m.containerId, hostId: m.hostId, size: m.size });
            next = m.containerId + m.size;
        }
        if (next < 65536) out.push({ type, containerId: next, hostId: 100000 + next, size: 65536 - next });
        return out;
    });

/** `lxc.key=value` or `lxc.key:value` -> `lxc.key: value`. */
const rawLine = (line: string): string => line.replace(/^(lxc\.[A-Za-z0-9_.]+)\s*[:=]\s*/, "$1: ");

const mapLxcOptions = (raw: Obj, notes: Note[]): { apparmorProfile?: string; rawLxc: string[] } => {
    let apparmorProfile: string | undefined;
    const rawLxc: string[] = [];
    const lines = listOf(raw, "lxc_options", notes).filter((l): l is string => typeof l === "string");
    for (const line of lines) {
        const m = /^lxc\.apparmor\.profile\s*[:=]\s*(\S+)$/.exec(line);
        if (m) {
            apparmorProfile = m[1];
            notes.push(note("changed", "lxc_options", `${line} -> apparmorProfile: ${m[1]}`));
        } else if (/^lxc\.[A-Za-z0-9_.]+\s*[:=]\s*\S/.test(line)) {
            rawLxc.push(rawLine(line));
            if (rawLine(line) !== line) notes.push(note("changed", "lxc_options", `${line} -> rawLxc "${rawLine(line)}" (the config file's key: value form)`));
        } else notes.push(note("dropped", "lxc_options", `${line}: not an lxc.* option`));
    }
    const profile = str(raw.apparmor_profile);
    if (profile && !apparmorProfile) {
        apparmorProfile = profile;
        if (profile === "unconfined") {
            notes.push(note("changed", "apparmor_profile",
                "unconfined -> apparmorProfile: unconfined (the original deleted the profile line instead, leaving Proxmox's default profile unless lxc_options set one)"));
        } else {
            notes.push(note("changed", "apparmor_profile", `${profile}: the profile file (the original copied etc/apparmor/${profile}) must be installed on the node`));
        }
    }
    if (raw.apparmor_manages_nesting === true) {
        if (apparmorProfile === "unconfined" || apparmorProfile === undefined) {
            notes.push(note("dropped", "apparmor_manages_nesting", "no effect with the unconfined profile (the original ignored it then too)"));
        } else {
            rawLxc.push("lxc.apparmor.allow_nesting: 1", "lxc.include: /usr/share/lxc/config/nesting.conf");
            notes.push(note("changed", "apparmor_manages_nesting", "written as rawLxc lines (allow_nesting and the nesting include)"));
        }
    }
    return { apparmorProfile, rawLxc };
};

const mapPctOptions = (raw: Obj, notes: Note[]): Obj | undefined => {
    const flags: Obj = {};
    for (const opt of listOf(raw, "pct_options", notes)) {
        const m = /^(nesting|keyctl|fuse)=(0|1)$/.exec(String(opt).trim());
        if (m) {
            if (m[2] === "1") flags[m[1]] = true;
            notes.push(note("changed", "pct_options", `${String(opt)} -> pctFeatures.${m[1]}${m[2] === "1" ? "" : " (off, the default)"}`));
        } else notes.push(note("dropped", "pct_options", `${String(opt)}: only nesting, keyctl and fuse are catalog flags`));
    }
    return Object.keys(flags).length > 0 ? flags : undefined;
};

/** "0, 1" / "0,1" / "0" -> [0, 1]; undefined for "none" or anything that is not a list of indexes. */
export const gpuIndexes = (assignment: unknown): number[] | undefined => {
    const text = typeof assignment === "number" ? String(assignment) : str(assignment);
    if (!text || text === "none") return undefined;
    const parts = text.split(",").map((p) => p.trim());
    return parts.every((p) => /^\d+$/.test(p)) ? [...new Set(parts.map(Number))] : undefined;
};

const mapMounts = (raw: Obj, id: number, ctx: ImportContext, notes: Note[]): Obj[] => {
    const mounts = listOf(raw, "mount_points", notes);
    return mounts.flatMap((m: unknown, i: number): Obj[] => {
        const key = `mount_points[${i}]`;
        if (!isObj(m) || !str(m.host_path) || !str(m.container_path)) {
            notes.push(note("dropped", key, "needs host_path and container_path"));
            return [];
        }
        const hostPath = str(m.host_path)!.replace(/\/+$/, "");
        let containerPath = str(m.container_path)!;
        const sslOf = num(PERSISTENT.exec(hostPath)?.[1]);
        if (sslOf !== undefined && sslOf !== id && sslOf === ctx.ca?.id) {
            notes.push(note("dropped", key,
                `${hostPath} (guest ${sslOf}'s CA directory, keys included): the CA root arrives as data through trusted_ca with caFrom: ${sslOf}`));
            return [];
        }
        let owner = num(m.owner_uid) !== undefined && num(m.owner_gid) !== undefined ? { uid: num(m.owner_uid), gid: num(m.owner_gid) } : undefined;
        if (sslOf === id && id === ctx.ca?.id) {
            containerPath = stepPath(ctx);
            notes.push(note("changed", `${key}.container_path`, `${String(m.container_path)} -> ${containerPath}: the CA directory itself (step_ca's STEPPATH)`));
        }
        if (sslOf === id && SECURED_SSL_GUESTS.includes(id) && !owner) {
            owner = { uid: 0, gid: 0 };
            notes.push(note("added", `${key}.owner`,
                "root:root, private: the original forced root:root on this directory" + (id === ctx.ca?.id ? " and then made it world-writable (chmod -R 777)" : "")));
        }
        return [compact({ hostPath, containerPath, owner })];
    });
};

const mapVolumes = (raw: Obj, notes: Note[]): Obj[] => {
    const volumes: Obj[] = [];
    for (const key of ["zfs_volumes", "volumes"]) {
        listOf(raw, key, notes).forEach((v: unknown, i: number) => {
            const size = isObj(v) ? num(v.size_gb) : undefined;
            const mountPoint = isObj(v) ? str(v.mount_point) : undefined;
            if (!isObj(v) || size === undefined || !mountPoint) {
                notes.push(note("dropped", `${key}[${i}]`, "needs size_gb and mount_point"));
                return;
            }
            volumes.push(compact({ path: mountPoint, sizeGb: size, storage: str(v.pool) ?? str(v.storage_pool) }));
            if (v.name !== undefined) notes.push(note("dropped", `${key}[${i}].name`, "volumes are named by Proxmox (vm-<id>-disk-N)"));
        });
    }
    return volumes;
};

/** unprivileged, or for a clone that does not say, its source's (a clone keeps the source's mode). */
const unprivilegedOf = (ctx: ImportContext, raw: Obj, seen: number[] = []): boolean | undefined => {
    if (typeof raw.unprivileged === "boolean") return raw.unprivileged;
    const src = num(raw.clone_from_ctid);
    const source = ctx.source.lxcs.find((l) => l.id === src);
    return source && !seen.includes(source.id) ? unprivilegedOf(ctx, source.raw, [...seen, source.id]) : undefined;
};

export const mapLxc = (id: number, raw: Obj, ctx: ImportContext): GuestImport => {
    const notes: Note[] = [];
    const secrets = secretScope(`ct${id}`, notes, ctx.secretValues);
    const { name, written, cores, memoryMb, diskGb } = fillOriginalDefaults("lxc", id, raw, ctx, notes);
    const d = ctx.defaults;
    const ip = ipOf(raw);
    const features = mapFeatures(raw, ctx, ip, notes, secrets);
    const isCa = ctx.ca?.id === id;
    const cloneFrom = num(raw.clone_from_ctid);
    const template = ctx.cloneSources.has(id) || str(raw.template_snapshot_name) !== undefined;
    if (template) {
        notes.push(note("changed", "template_snapshot_name",
            `${str(raw.template_snapshot_name) ?? "(none)"} -> template: true: clones are made from a template (the original cloned a snapshot of the running container)`));
    }

    const unprivileged = unprivilegedOf(ctx, raw);
    if (raw.unprivileged === undefined) {
        notes.push(note("added", "unprivileged", unprivileged === undefined ? "missing: the catalog default (unprivileged) applies" : `missing: ${unprivileged} as its clone source`));
    }
    if (unprivileged === false) notes.push(note("changed", "unprivileged", "false: the catalog requires privilegedReason; add why this container cannot run unprivileged"));

    const osFile = str(raw.template) ? path.posix.basename(str(raw.template)!) : undefined;
    const defaultOs = (d.osTemplate as Obj).file;
    if (osFile && cloneFrom !== undefined) notes.push(note("dropped", "template", "a clone is not created from an OS template"));

    const swap = num(raw.swap_mb);
    if (swap !== undefined) notes.push(note("changed", "swap_mb", `swapMb: ${swap}: the original ignored it (no --swap)`));

    const { apparmorProfile, rawLxc } = mapLxcOptions(raw, notes);
    const gpus = gpuIndexes(raw.gpu_assignment);
    if (gpus) {
        notes.push(note("changed", "gpu_assignment",
            `${String(raw.gpu_assignment)} -> gpus: [${gpus.join(", ")}]: /dev/nvidia${gpus.join(", /dev/nvidia")}, nvidiactl, nvidia-uvm and nvidia-uvm-tools pass through as Proxmox devN entries (which also work unprivileged) instead of the cgroup and bind lines the original appended to the config; the GPUs are declared in defaults.yaml nodes`));
    } else if (raw.gpu_assignment !== undefined && raw.gpu_assignment !== "none") {
        notes.push(note("dropped", "gpu_assignment", `${JSON.stringify(raw.gpu_assignment)}: not "none" or a list of GPU indexes`));
    }

    let idMaps: Obj[] | undefined;
    const idMapList = listOf(raw, "id_maps", notes);
    if (idMapList.length > 0) {
        const declared = idMapList.filter(isObj).map((m) => ({
            type: m.type === "uid" ? "uid" as const : "gid" as const,
            containerId: num(m.container_id) ?? 0,
            hostId: num(m.host_id) ?? 0,
            size: num(m.size) ?? 1,
        }));
        idMaps = completeIdMaps(declared);
        notes.push(note("changed", "id_maps",
            "the original ignored the declared map and wrote only the default one; the declared entries are kept and completed into full uid and gid maps (the rest shifted by 100000)"));
    }

    const storage = str(raw.storage_pool);
    const application = mapApplication(raw, ctx, notes);
    const healthCheck = mapHealthCheck(raw, ctx, "lxc", isCa, features, notes);
    const firewall = mapFirewall(raw.firewall, "lxc", notes);
    const bindMounts = mapMounts(raw, id, ctx, notes);
    const volumes = mapVolumes(raw, notes);
    if (isCa) notes.push(note("added", "protect", "true: the CA's keys live here; Pulumi refuses to delete it"));
    if (raw.bootstrap_ca_url !== undefined && !(features ?? []).some((f) => typeof f !== "string" && f.name === "traefik")) {
        notes.push(note("dropped", "bootstrap_ca_url", "only the traefik feature used it; steps that need the CA take caFrom"));
    }
    // Proxmox refuses a template with snapshots and snapshots of a container with bind mounts.
    const snapshotsBlockedBy = template ? "the container is a template (Proxmox refuses to convert a container with snapshots)" : bindMounts.length > 0 ? "the container has bind mounts (Proxmox: snapshot feature is not available)" : undefined;
    const lifecycleSnapshots = raw.enable_lifecycle_snapshots === true && !snapshotsBlockedBy;
    if (raw.enable_lifecycle_snapshots === true) {
        notes.push(snapshotsBlockedBy
            ? note("dropped", "enable_lifecycle_snapshots", `no snapshots: ${snapshotsBlockedBy}`)
            : note("changed", "enable_lifecycle_snapshots", "lifecycleSnapshots: true (pre-configured before the features, final-form after the health check)"));
    }
    reportUnknownKeys(raw, raw.gpu_assignment !== undefined && raw.gpu_assignment !== "none" ? [...HANDLED, "gpu_assignment"] : HANDLED, notes, secrets);

    const guest = compact({
        kind: "lxc",
        id,
        name: written,
        template: template || undefined,
        cloneFrom,
        protect: isCa || undefined,
        dependsOn: mapDependencies(raw, notes),
        cores,
        memoryMb,
        swapMb: swap,
        diskGb,
        storage: storage && storage !== (d.storage as Obj).lxc ? storage : undefined,
        unprivileged: unprivileged === false ? false : undefined,
        osTemplate: osFile && cloneFrom === undefined && osFile !== defaultOs ? { file: osFile } : undefined,
        network: mapNetwork(raw, ctx, "lxc", notes),
        ...mapBoot(raw, "lxc", notes),
        pctFeatures: mapPctOptions(raw, notes),
        gpus,
        apparmorProfile,
        rawLxc: rawLxc.length > 0 ? rawLxc : undefined,
        lifecycleSnapshots: lifecycleSnapshots || undefined,
        idMaps,
        bindMounts: bindMounts.length > 0 ? bindMounts : undefined,
        volumes: volumes.length > 0 ? volumes : undefined,
        features,
        application,
        healthCheck,
        traefikService: mapTraefikService(raw, "lxc", isCa || num(isObj(raw.traefik_service) ? raw.traefik_service.port : undefined) === 443, notes),
        firewall,
    });
    applyInvalid("lxc", raw, guest, notes);
    return { id, name, kind: "lxc", file: guestFileName(id, name), guest, notes, missingScripts: missingScripts(ctx, guest) };
};
