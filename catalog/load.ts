// Loads guests/*.yaml and guests/defaults.yaml, validates them against the schema and against each other, and resolves
// defaults. Every problem is collected with its file, line, column and field; nothing is registered unless all pass.
import * as fs from "fs";
import * as path from "path";
import { type Catalog, type ConfigKeyRef, type GuestSpec, type LxcSpec, type ResolvedStep, type VmSpec, RUNTIME_CA_ENV, ipOf } from "./model";
import { CatalogError, type Problem, showValue } from "./problems";
import { paramFormatProblem } from "./paramFormats";
import { Defaults, type DefaultsFile, type FeatureEntrySpec, Guest, type GuestFile, MAX_DESCRIPTION } from "./schema";
import { ScriptLibrary, type ScriptInfo, envName } from "./scripts";
import { YamlSource } from "./yamlSource";
import { zodProblems } from "./zodProblems";
import { findCycle, indexGuests } from "./graph";
import { traefikDynamicConfig } from "./traefik";
import { GPU_DERIVED, checkGpus, gpuDerivedEnv, gpuDevicePaths } from "./gpus";
import { type RouteProblem, checkRoutes, routeHost } from "./routes";
import { applyRouteWaits, routeWaitProblems } from "./routeWaits";
import { ClusterCheck, copyIds } from "./cluster";
import { checkClones } from "./clones";
import { checkGpuShares, withGpuLanes } from "./gpuShares";

export const DEFAULTS_FILE = "defaults.yaml";

export interface LoadOptions {
    /** Catalog directory (stack config phoenix:catalog), absolute or relative to baseDir. */
    dir: string;
    /** Directory of the feature scripts. Default: <baseDir>/features. */
    featuresDir?: string;
    /** Proxmox node for guests that name none (stack config phoenix:node). */
    node: string;
    /** Every node the stack declares (phoenix:nodes); a guest on any other is an error. Default: not checked. */
    nodes?: readonly string[];
    /** Where relative paths start. Default: the project root (this file's parent's parent). */
    baseDir?: string;
    /** How a file is read and parsed (shown name, absolute path). Default: a new YamlSource; tests reuse unchanged ones. */
    readSource?: (shownFile: string, absolutePath: string) => YamlSource;
}

export const PROJECT_ROOT = path.resolve(__dirname, "..");

interface Parsed {
    source: YamlSource;
    guest: GuestFile;
}

/** The catalog, or a CatalogError with every problem. */
export const loadCatalog = (opts: LoadOptions): Catalog => {
    const { catalog, problems } = readCatalog(opts);
    if (problems.length > 0) throw new CatalogError(problems);
    return catalog;
};

/**
 * The catalog as far as it resolves, with its problems (the importer repairs routes from it); throws a CatalogError
 * only when no catalog can be built (no defaults, unparsable guests, ambiguous IDs).
 */
export const readCatalog = (opts: LoadOptions): { catalog: Catalog; problems: Problem[]; routeProblems: RouteProblem[] } => {
    const baseDir = opts.baseDir ?? PROJECT_ROOT;
    const dir = path.resolve(baseDir, opts.dir);
    const shown = (f: string) => path.join(opts.dir, f);
    const scripts = new ScriptLibrary(path.resolve(baseDir, opts.featuresDir ?? "features"));
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
        throw new CatalogError([{ file: opts.dir, line: 1, col: 1, field: "(catalog)", message: `catalog directory not found (${dir})` }]);
    }
    const problems: Problem[] = [];

    const readSource = opts.readSource ?? ((shownFile: string, absolutePath: string) => new YamlSource(shownFile, absolutePath));
    const defaults = loadDefaults(dir, shown(DEFAULTS_FILE), readSource, problems);
    const files = listDir(dir, opts.dir).filter((f) => /\.ya?ml$/.test(f) && f !== DEFAULTS_FILE).sort();
    const parsed: Parsed[] = [];
    // IDs of guest files that exist but failed validation: references to them are not reported again as unknown.
    const invalidIds = new Set<number>();
    for (const f of files) {
        const source = readSource(shown(f), path.join(dir, f));
        problems.push(...source.problems);
        if (source.problems.length > 0) {
            idsOfBrokenFile(f, source).forEach((id) => invalidIds.add(id));
            continue;
        }
        const result = Guest.safeParse(source.data, { reportInput: true });
        if (result.success) parsed.push({ source, guest: result.data });
        else {
            problems.push(...zodProblems(result.error.issues, source, Guest));
            idsOfBrokenFile(f, source).forEach((id) => invalidIds.add(id));
        }
    }
    if (files.length === 0) problems.push({ file: opts.dir, line: 1, col: 1, field: "(catalog)", message: "no guest files (*.yaml) found" });
    if (!defaults) throw new CatalogError(problems);

    const byId = new Map<number, Parsed>();
    const duplicateIds = new Set<number>();
    for (const p of parsed) {
        const first = byId.get(p.guest.id);
        if (first) {
            problems.push(p.source.problemAt(["id"], `${p.guest.id} is already used by ${first.source.file} (${first.guest.kind}); IDs are unique across containers and VMs`));
            duplicateIds.add(p.guest.id);
            invalidIds.add(p.guest.id);
        } else byId.set(p.guest.id, p);
    }
    // Which guest an ambiguous or invalid ID means is unknown: leave cross-references to the problems already reported.
    if (invalidIds.size > 0) {
        duplicateIds.forEach((id) => byId.delete(id));
        problems.push(...[...byId.values()].flatMap((p) => checkReferences(p, byId, invalidIds)));
        throw new CatalogError(problems);
    }

    const guests = new Map<number, GuestSpec>();
    for (const p of byId.values()) guests.set(p.guest.id, resolveGuest(p.guest, p.source.file, defaults, opts.node));
    const copies = copyIds(byId.values()); // references to a template's copies are reported by the cluster check
    for (const p of byId.values()) problems.push(...checkReferences(p, byId, new Set(copies.keys())));
    for (const p of byId.values()) if (p.guest.kind === "lxc") problems.push(...checkGpus(p.source, p.guest.gpus, guests.get(p.guest.id)!.node, defaults));
    problems.push(...checkUniqueAddresses([...byId.values()]));
    problems.push(...checkClones(guests, (id) => byId.get(id)!.source));
    // Steps need the whole catalog (CA URLs, Traefik routes), so they are resolved after every guest is known.
    for (const p of byId.values()) {
        const g = guests.get(p.guest.id)!;
        // NFS mounts come first, so features can use them; the catalog states the mounts, not the script.
        const implicit: FeatureEntrySpec[] = g.kind === "vm" && g.nfsVolumes.length > 0 && !p.guest.features.includes("nfs_volumes") ? ["nfs_volumes"] : [];
        g.features = [...implicit, ...p.guest.features].flatMap((entry, i) => resolveStep(p, i < implicit.length ? ["nfsVolumes"] : ["features", i - implicit.length], "feature", entry, g, guests, scripts, defaults, problems));
        if (p.guest.application) {
            g.application = resolveStep(p, ["application"], "application", { name: p.guest.application.script, ...p.guest.application, after: [] }, g, guests, scripts, defaults, problems)[0];
        }
        g.configKeys = configKeysOf(p);
    }

    // Steps that did not resolve (a missing script) leave what the guest listens on unknown: not checked.
    const incomplete = new Set([...byId.values()].filter((p) => {
        const g = guests.get(p.guest.id)!;
        const stated = p.guest.features.length + (g.kind === "vm" && g.nfsVolumes.length > 0 && !p.guest.features.includes("nfs_volumes") ? 1 : 0) + (p.guest.application ? 1 : 0);
        return g.features.length + (g.application ? 1 : 0) !== stated;
    }).map((p) => p.guest.id));
    const { routes, problems: routeProblems, waits } = checkRoutes(guests, defaults.network.searchDomain, incomplete);
    applyRouteWaits(waits, guests);
    // Routes are checked between valid guests: on a broken catalog (a guest missing, a wrong address) their hops
    // would only repeat the problem elsewhere. The importer still reads them (readCatalog) to repair what it imports.
    if (problems.length === 0) problems.push(...routeProblems.map((r) => byId.get(r.guest)!.source.problemAt(r.at, r.message)));
    // After the routes (between the guests the files declare): adds the templates' copies on other nodes.
    const cluster = new ClusterCheck(byId, guests, defaults, { nodes: opts.nodes, defaultsSource: () => readSource(shown(DEFAULTS_FILE), path.join(dir, DEFAULTS_FILE)) });
    cluster.run(copies);
    problems.push(...cluster.problems);

    // A guest naming itself (dependsOn, cloneFrom, caFrom, after) is reported at that field by checkReferences; left
    // in the graph it would be reported a second time, as a cycle of one.
    const other = (g: GuestSpec) => (d: number) => d !== g.id && guests.has(d);
    const graph = indexGuests([...guests.values()].map((g) => ({
        id: g.id,
        kind: g.kind,
        dependsOn: g.dependsOn.filter(other(g)),
        cloneFrom: g.cloneSource === g.id ? undefined : g.cloneSource,
        provisionAfter: g.provisionAfter,
        copyOf: g.copyOf,
        consumes: [...g.features, ...(g.application ? [g.application] : [])].flatMap((s) => [...(s.caFrom !== undefined ? [s.caFrom] : []), ...s.after]).filter(other(g)),
    })));
    const cycle = findCycle(graph);
    if (cycle) problems.push(byId.get(cycle[0])!.source.problemAt(["dependsOn"], `dependency cycle ${cycle.join(" -> ")}`));
    else problems.push(...checkGpuShares(guests, graph, (s, message) => shareProblem(byId.get(s.guest)!, s.feature, guests.get(s.guest)!, message)));
    // The routes' own waits must not close a loop with the catalog's edges (checked on a catalog that is sound otherwise).
    if (problems.length === 0 && waits.length > 0) problems.push(...routeWaitProblems(waits, guests, withGpuLanes(guests, graph)).map((r) => byId.get(r.guest)!.source.problemAt(r.at, r.message)));

    return { catalog: { dir, defaults, guests, graph, scripts, routes }, problems, routeProblems };
};

/** A GPU share problem at the server's share parameter in the guest's file, else at its feature (a default applies). */
const shareProblem = ({ source, guest }: Parsed, feature: string, g: GuestSpec, message: string): Problem => {
    const i = guest.features.findIndex((f) => (typeof f === "string" ? f : f.name) === feature);
    const entry = guest.features[i];
    const param = g.features.find((f) => f.name === feature)?.script.gpuShare?.param;
    const key = typeof entry === "object" ? Object.keys(entry.params).find((k) => envName(k) === param) : undefined;
    return source.problemAt(key ? ["features", i, "params", key] : ["features", i], message);
};

/**
 * The guest IDs a file that failed to load may stand for, so references to them are not reported as unknown guests
 * (one broken file is one problem, not one per reference): its `id` if it could be read, else an `id:` line of its
 * text, and the `<id>-` prefix of its name (the catalog's naming convention).
 */
const idsOfBrokenFile = (file: string, source: YamlSource): number[] => {
    const read = (source.data as { id?: unknown } | undefined)?.id;
    const line = /^id:\s*(\d{1,9})\s*(#.*)?$/m.exec(source.text)?.[1];
    const prefix = /^(\d{1,9})-/.exec(file)?.[1];
    return [...new Set([read, line, prefix].filter((v) => v !== undefined).map(Number).filter(Number.isSafeInteger))];
};

const isPresent = (file: string): boolean => {
    try {
        fs.lstatSync(file);
        return true;
    } catch {
        return false;
    }
};

/** The catalog directory's entries; one that cannot be listed is a catalog problem, not an exception. */
const listDir = (dir: string, shown: string): string[] => {
    try {
        return fs.readdirSync(dir);
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === "EACCES" || code === "EPERM" ? "permission denied (the user running pulumi needs read access)" : `${code ?? ""} ${(e as Error).message}`.trim();
        throw new CatalogError([{ file: shown, line: 1, col: 1, field: "(catalog)", message: `the catalog directory cannot be listed: ${why}` }]);
    }
};

const loadDefaults = (dir: string, shownFile: string, readSource: NonNullable<LoadOptions["readSource"]>, problems: Problem[]): DefaultsFile | undefined => {
    const file = path.join(dir, DEFAULTS_FILE);
    // lstat, not exists: a broken symbolic link is there, and reading it says what is wrong with it.
    if (!isPresent(file)) {
        problems.push({ file: shownFile, line: 1, col: 1, field: "(file)", message: "missing: the catalog needs its shared defaults (storage, network, images)" });
        return undefined;
    }
    const source = readSource(shownFile, file);
    problems.push(...source.problems);
    if (source.problems.length > 0) return undefined;
    const result = Defaults.safeParse(source.data, { reportInput: true });
    if (!result.success) {
        problems.push(...zodProblems(result.error.issues, source, Defaults));
        return undefined;
    }
    return result.data;
};

const resolveGuest = (g: GuestFile, file: string, d: DefaultsFile, defaultNode: string): GuestSpec => {
    const network = {
        ...g.network,
        bridge: g.network.bridge ?? d.network.bridge,
        gateway: g.network.ip === "dhcp" ? undefined : g.network.gateway ?? d.network.gateway,
        nameservers: g.network.nameservers ?? d.network.nameservers,
        searchDomain: g.network.searchDomain ?? d.network.searchDomain,
    };
    const common = { file, node: g.node ?? defaultNode, network, features: [] as ResolvedStep[], application: undefined, configKeys: [] };
    if (g.kind === "lxc") {
        const os = g.osTemplate ?? d.osTemplate;
        const gpuDevices = gpuDevicePaths(g.gpus, d.nodes[common.node]);
        return { ...g, ...common, storage: g.storage ?? d.storage.lxc, osTemplate: { ...os, storage: os.storage ?? d.storage.templates }, gpuDevices } satisfies LxcSpec;
    }
    const image = g.image ?? d.cloudImage;
    return {
        ...g,
        ...common,
        storage: g.storage ?? d.storage.vm,
        image: { ...image, storage: image.storage ?? d.storage.images },
        cloudInit: { user: g.cloudInit.user ?? d.cloudInitUser, passwordSecret: g.cloudInit.passwordSecret },
    } satisfies VmSpec;
};

const checkReferences = ({ source, guest: g }: Parsed, byId: Map<number, Parsed>, invalidIds: ReadonlySet<number>): Problem[] => {
    const problems: Problem[] = [];
    const unknown = (id: number) => !byId.has(id) && !invalidIds.has(id);
    const known = () => [...byId.keys()].sort((a, b) => a - b).join(", ");
    g.dependsOn.forEach((d, i) => {
        if (d === g.id) problems.push(source.problemAt(["dependsOn", i], "a guest cannot depend on itself"));
        else if (unknown(d)) problems.push(source.problemAt(["dependsOn", i], `unknown guest ${d}; known guests: ${known()}`));
    });
    if (g.cloneFrom !== undefined) {
        const src = byId.get(g.cloneFrom)?.guest;
        if (g.cloneFrom === g.id) problems.push(source.problemAt(["cloneFrom"], "a guest cannot clone itself"));
        else if (!src) {
            if (unknown(g.cloneFrom)) problems.push(source.problemAt(["cloneFrom"], `unknown guest ${g.cloneFrom}; known guests: ${known()}`));
        }
        else if (src.kind !== g.kind) {
            problems.push(source.problemAt(["cloneFrom"], `guest ${src.id} is ${src.kind === "lxc" ? "a container" : "a VM"}; a ${g.kind === "lxc" ? "container" : "VM"} can only clone a ${g.kind === "lxc" ? "container" : "VM"}`));
        } else if (!src.template) {
            problems.push(source.problemAt(["cloneFrom"], `guest ${src.id} is not marked template: true; only templates are cloned (a running guest cannot be cloned consistently)`));
        }
    }
    g.features.forEach((f, i) => {
        if (typeof f === "string") return;
        f.after.forEach((a, j) => {
            if (a === g.id) problems.push(source.problemAt(["features", i, "after", j], "a step cannot wait for its own guest (a guest's steps already run in order)"));
            else if (unknown(a)) problems.push(source.problemAt(["features", i, "after", j], `unknown guest ${a}; known guests: ${known()}`));
        });
        if (f.caFrom !== undefined) {
            const ca = byId.get(f.caFrom)?.guest;
            if (f.caFrom === g.id) problems.push(source.problemAt(["features", i, "caFrom"], "a guest cannot take the CA certificate from itself: the step would wait for its own guest to be ready"));
            else if (!ca) {
                if (unknown(f.caFrom)) problems.push(source.problemAt(["features", i, "caFrom"], `unknown guest ${f.caFrom}; known guests: ${known()}`));
            } else if (!ca.features.some((x) => (typeof x === "string" ? x : x.name) === "step_ca")) {
                problems.push(source.problemAt(["features", i, "caFrom"], `guest ${f.caFrom} has no step_ca feature, so it provides no CA certificate`));
            }
        }
    });
    if (g.kind === "vm") problems.push(...checkVmSteps(source, g));
    if (g.kind === "lxc" && g.unprivileged && g.idMaps.length > 0) problems.push(...checkIdMaps(source, g.idMaps));
    if (g.kind === "lxc" && g.lifecycleSnapshots) {
        // Proxmox refuses both: `pct template` on a container with snapshots, and `pct snapshot` when a mount point
        // (a bind mount is one) has no snapshot support.
        if (g.template) problems.push(source.problemAt(["lifecycleSnapshots"], "a container template cannot have snapshots (Proxmox refuses to convert it); the template itself is the final form", true));
        else if (g.bindMounts.length > 0) problems.push(source.problemAt(["lifecycleSnapshots"], "Proxmox cannot snapshot a container with bind mounts (snapshot feature is not available); drop the snapshots or the bind mounts", true));
    }
    if (g.kind === "lxc" && !g.unprivileged && !g.privilegedReason) {
        problems.push(source.problemAt(["unprivileged"], "a privileged container needs privilegedReason: say why it cannot run unprivileged"));
    }
    if (g.kind === "lxc" && g.unprivileged && g.privilegedReason !== undefined) {
        problems.push(source.problemAt(["privilegedReason"], "only a privileged container (unprivileged: false) has a reason to be privileged; remove it", true));
    }
    if (g.kind === "lxc" && !g.unprivileged && g.privilegedReason) {
        // components/lxc.ts containerArgs appends "Privileged because: <reason>" to the description Proxmox stores.
        const length = (g.description ? g.description.length + 1 : 0) + "Privileged because: ".length + g.privilegedReason.length;
        if (length > MAX_DESCRIPTION) problems.push(source.problemAt(["privilegedReason"], `with the description it makes a ${length}-character container description; Proxmox keeps at most ${MAX_DESCRIPTION}`));
    }
    const seen = new Map<string, number>();
    g.firewall.rules.forEach((r, i) => {
        // Two rules that differ only in their comment match the same packets: the second never fires.
        const { comment: _comment, ...effect } = r;
        const key = JSON.stringify(effect, Object.keys(effect).sort());
        const first = seen.get(key);
        if (first !== undefined) problems.push(source.problemAt(["firewall", "rules", i], `matches the same traffic as rules[${first}]; remove the duplicate`));
        else seen.set(key, i);
    });
    return problems;
};

/**
 * A VM template never boots (it is created as a template), so steps, snapshots and firewall rules on it would be
 * silently ignored; and a booting VM's in-guest steps run over SSH to its catalog IP, so they need a static one.
 */
const checkVmSteps = (source: YamlSource, g: Extract<GuestFile, { kind: "vm" }>): Problem[] => {
    const steps = ([["features", g.features.length > 0], ["nfsVolumes", g.nfsVolumes.length > 0], ["application", !!g.application], ["healthCheck", !!g.healthCheck]] as const)
        .filter(([, present]) => present)
        .map(([field]) => field);
    if (g.template) {
        const ignored = [...steps, ...(g.lifecycleSnapshots ? ["lifecycleSnapshots" as const] : []), ...(g.firewall.rules.length > 0 ? ["firewall" as const] : [])];
        return ignored.map((field) => source.problemAt([field], "a VM template never boots, so this would never apply; put it on the VMs that clone this template", true));
    }
    if (g.network.ip === "dhcp" && steps.length > 0) {
        return [source.problemAt(["network", "ip"], `a VM with ${steps.join(", ")} needs a static address ("10.0.0.20/24"): its steps run over SSH to that address`)];
    }
    return [];
};

/** An unprivileged container's maps must cover container ids 0..65535 exactly once, for uids and for gids. */
const checkIdMaps = (source: YamlSource, maps: { type: "uid" | "gid"; containerId: number; size: number }[]): Problem[] =>
    (["uid", "gid"] as const).flatMap((type) => {
        const ranges = maps.map((m, i) => ({ ...m, i })).filter((m) => m.type === type).sort((a, b) => a.containerId - b.containerId);
        let next = 0;
        for (const r of ranges) {
            if (r.containerId !== next) {
                const what = r.containerId < next ? `overlaps the ${type} range before it` : `leaves container ${type}s ${next}..${r.containerId - 1} unmapped`;
                return [source.problemAt(["idMaps", r.i], `${what}; the ${type} maps must cover 0..65535 exactly once`)];
            }
            next = r.containerId + r.size;
        }
        return next === 65536 ? [] : [source.problemAt(["idMaps"], `the ${type} maps cover container ${type}s 0..${next - 1}; they must cover 0..65535 (an unprivileged container cannot start otherwise)`)];
    });

const checkUniqueAddresses = (parsed: Parsed[]): Problem[] => {
    const problems: Problem[] = [];
    for (const field of ["ip", "mac"] as const) {
        const owners = new Map<string, Parsed>();
        for (const p of parsed) {
            const raw = p.guest.network[field];
            if (!raw || raw === "dhcp") continue;
            const key = field === "ip" ? raw.split("/")[0] : raw.toUpperCase();
            const first = owners.get(key);
            if (first) problems.push(p.source.problemAt(["network", field], `${key} is already used by guest ${first.guest.id} (${first.source.file})`));
            else owners.set(key, p);
        }
    }
    return problems;
};

type StepEntry = Exclude<FeatureEntrySpec, string>;

/**
 * The stack config keys a guest file names (step `secrets:`, `cloudInit.passwordSecret`), each with its field. Reads
 * the file's data as parsed YAML, valid or not (the offline plan gives these keys placeholders before the catalog is
 * validated): what is not a key where one belongs is left to the schema.
 */
export const namedConfigKeys = (guest: unknown): { key: string; path: (string | number)[] }[] => {
    const at = (v: unknown, k: string | number): unknown => (typeof v === "object" && v !== null ? (v as Record<string | number, unknown>)[k] : undefined);
    const strings = (v: unknown): [string, string][] =>
        typeof v === "object" && v !== null && !Array.isArray(v) ? Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string") : [];
    const secrets = (path: (string | number)[], step: unknown) => strings(at(step, "secrets")).map(([name, key]) => ({ key, path: [...path, "secrets", name] }));
    const features = at(guest, "features");
    const password = at(at(guest, "cloudInit"), "passwordSecret");
    return [
        ...(Array.isArray(features) ? features.flatMap((f, i) => secrets(["features", i], f)) : []),
        ...secrets(["application"], at(guest, "application")),
        ...(at(guest, "kind") === "vm" && typeof password === "string" ? [{ key: password, path: ["cloudInit", "passwordSecret"] }] : []),
    ];
};

/** The stack config keys a guest names, each with the field that names it (checked before anything is registered). */
const configKeysOf = ({ source, guest: g }: Parsed): ConfigKeyRef[] =>
    namedConfigKeys(g).map(({ key, path }) => {
        const { message: _, ...at } = source.problemAt(path, "");
        return { key, at };
    });

/** What each value derived below comes from, for the message when it cannot be derived. */
const DERIVED_FROM: Record<string, string> = {
    GUEST_ADDRESS: "a static network.ip",
    SERVER_NAMES: "routes (traefikService)",
    CA_URL: "caFrom on the step or on the guest's trusted_ca feature",
    TRAEFIK_DYNAMIC_YAML: "routes (traefikService)",
};

/** Values Phoenix derives from the catalog for scripts that declare them. */
const derivedEnv = (script: ScriptInfo, g: GuestSpec, guests: ReadonlyMap<number, GuestSpec>, caFrom: number | undefined, d: DefaultsFile): Record<string, string> => {
    const env: Record<string, string> = {};
    const declares = (name: string) => script.params.has(name);
    if (declares("NFS_VOLUMES") && g.kind === "vm") env.NFS_VOLUMES = g.nfsVolumes.map((v) => `${v.server}:${v.export} ${v.mountPoint} ${v.options}`).join("\n");
    if (declares("DOCKER_USER") && g.kind === "vm") env.DOCKER_USER = g.cloudInit.user;
    Object.assign(env, gpuDerivedEnv(declares, g.kind === "lxc" ? g.gpus : [], d.nodes[g.node]));
    if (declares("TRAEFIK_DYNAMIC_YAML")) env.TRAEFIK_DYNAMIC_YAML = traefikDynamicConfig(guests.values(), d.network.searchDomain);
    if (declares("SERVER_NAMES")) {
        env.SERVER_NAMES = [...guests.values()].filter((x) => x.traefikService).sort((a, b) => a.id - b.id).map((x) => routeHost(x.traefikService!.name, d.network.searchDomain)).join(" ");
    }
    if (declares("GUEST_ADDRESS") && ipOf(g)) env.GUEST_ADDRESS = ipOf(g)!;
    // A step without its own caFrom uses the CA its guest trusts (its trusted_ca feature's caFrom).
    const caId = caFrom ?? g.features.find((f) => f.caFrom !== undefined)?.caFrom;
    const ca = caId !== undefined ? guests.get(caId) : undefined;
    if (declares("CA_URL") && ca && ipOf(ca)) {
        const caStep = ca.features.find((s) => s.name === "step_ca");
        const port = (caStep?.env.CA_ADDRESS ?? ":9000").split(":").pop();
        env.CA_URL = `https://${ipOf(ca)}:${port}`;
    }
    return env;
};

const resolveStep = (
    { source }: Parsed,
    at: (string | number)[],
    kind: ResolvedStep["kind"],
    raw: FeatureEntrySpec,
    g: GuestSpec,
    guests: ReadonlyMap<number, GuestSpec>,
    scripts: ScriptLibrary,
    d: DefaultsFile,
    problems: Problem[],
): ResolvedStep[] => {
    const entry: StepEntry = typeof raw === "string" ? { name: raw, params: {}, secrets: {}, after: [] } : raw;
    const nameField = typeof raw === "string" ? at : kind === "application" ? [...at, "script"] : [...at, "name"];
    const script = kind === "feature" ? scripts.feature(entry.name) : scripts.application(entry.name);
    if (!script) {
        const where = kind === "feature" ? `features/${entry.name}.sh` : `features/apps/${entry.name}.sh`;
        problems.push(source.problemAt(nameField, `no script ${where} for ${kind} "${entry.name}"; add the script or fix the name`));
        return [];
    }
    const env: Record<string, string> = {};
    const refused = new Set<string>(); // given, but in the wrong format: reported once, not again as missing
    const derived = derivedEnv(script, g, guests, entry.caFrom, d);
    const given = { ...(d.featureParams[entry.name] ?? {}), ...entry.params };
    for (const [param, value] of Object.entries(given)) {
        const name = envName(param);
        const declared = script.params.get(name);
        const inGuest = param in entry.params;
        const report = (problem: string, atKey: boolean) =>
            problems.push(inGuest ? source.problemAt([...at, "params", param], problem, atKey) : source.problemAt(nameField, `defaults.yaml featureParams.${entry.name}.${param}: ${problem}`));
        if (declared && GPU_DERIVED[name]) {
            report(`set by the catalog from the guest's node and gpus (${GPU_DERIVED[name].hint(g.node)}); remove this parameter`, true);
            continue;
        }
        if (name in derived) {
            // Phoenix sets it from the catalog; a value given here would be silently replaced.
            report(`Phoenix derives ${name} from the catalog for ${script.name}.sh; remove this parameter`, true);
            continue;
        }
        if (!declared || declared.secret) {
            const accepted = [...script.params.values()].filter((p) => !p.secret && !GPU_DERIVED[p.name]).map((p) => p.name.toLowerCase().replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase()));
            report(`${declared ? "is a secret: set it under secrets with a stack config key" : `not a parameter of ${script.name}.sh`}; accepted: ${accepted.join(", ") || "none"}`, true);
            continue;
        }
        const text = Array.isArray(value) ? value.join(",") : String(value);
        // The script would refuse it on the guest, after everything before it was deployed: refuse it here.
        const wrong = paramFormatProblem(scripts.formats(), declared.format, text);
        if (wrong) {
            report(`${wrong} (${script.name}.sh ${name}, format ${declared.format}), received ${showValue(text)}`, false);
            refused.add(name);
            continue;
        }
        env[name] = text;
    }
    Object.assign(env, derived);
    for (const [name, key] of Object.entries(entry.secrets)) {
        if (!script.params.get(name)?.secret) problems.push(source.problemAt([...at, "secrets", name], `not a secret of ${script.name}.sh (declared secrets: ${[...script.params.values()].filter((p) => p.secret).map((p) => p.name).join(", ") || "none"}); config key ${key}`, true));
    }
    const runtime = new Set<string>(entry.caFrom !== undefined ? RUNTIME_CA_ENV : []);
    for (const p of script.params.values()) {
        if (!p.required) continue;
        if (p.secret ? !(p.name in entry.secrets) : !(p.name in env) && !runtime.has(p.name) && !refused.has(p.name)) {
            const how = p.secret
                ? `secrets: { ${p.name}: <stack config key> }`
                : GPU_DERIVED[p.name] ? GPU_DERIVED[p.name].hint(g.node)
                : DERIVED_FROM[p.name] ? `${DERIVED_FROM[p.name]} (Phoenix derives ${p.name} from it)`
                : p.name.startsWith("CA_") && script.params.has("CA_ROOT_PEM") ? "caFrom: <CA guest ID>" : `params: { ${p.name.toLowerCase().replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())}: ... }`;
            problems.push(source.problemAt(nameField, `${script.name}.sh requires ${p.name} (${p.description}); set ${how}`));
        }
    }
    return [{ kind, name: entry.name, script, env, secrets: entry.secrets, caFrom: entry.caFrom, after: entry.after }];
};
