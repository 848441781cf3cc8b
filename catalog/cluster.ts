// The catalog on a cluster of nodes: every node named must be one the stack declares; a template may be kept on
// several nodes (`nodes: { pve1: 900, pve2: 901 }`), and each clone takes the copy on its own node; a clone from
// another node's copy must be one Proxmox can make (storage sharing from defaults.yaml `datastores`); datastores
// must be on the nodes that use them; and `ha` must be able to do what it promises. Every problem is located.
//
// What Proxmox allows (sources in the comments): a container is cloned to another node only onto shared storage
// (pve-container API2/LXC.pm clone_vm: "can't clone to non-shared storage", "can't clone CT to node ... (CT uses
// local storage)"); a VM whose disks are all shared is cloned straight to the other node, onto shared storage only
// (qemu-server API2/Qemu.pm clone_vm), and otherwise the provider clones it on the source's node and migrates it
// with its local disks (bpg vm.go: "clone to the source node and then migrate to the target node").
import type { DefaultsFile, GuestFile, HaSpec } from "./schema";
import type { GuestSpec } from "./model";
import type { Problem } from "./problems";
import type { YamlSource } from "./yamlSource";

interface Parsed {
    source: YamlSource;
    guest: GuestFile;
}

export interface ClusterOptions {
    /** The nodes the stack declares; undefined: node names are not checked (the importer, plain catalog reads). */
    nodes?: readonly string[];
    /** Where defaults.yaml problems point (its source, parsed on demand). */
    defaultsSource: () => YamlSource;
}

/** IDs that templates' `nodes` give to their copies on other nodes, with the template each belongs to. */
export const copyIds = (parsed: Iterable<Parsed>): Map<number, number> => {
    const ids = new Map<number, number>();
    for (const { guest: g } of parsed) for (const id of Object.values(g.nodes ?? {})) if (id !== g.id) ids.set(id, g.id);
    return ids;
};

const datastore = (d: DefaultsFile, name: string) => ({ shared: d.datastores[name]?.shared ?? false, nodes: d.datastores[name]?.nodes });
const isOn = (d: DefaultsFile, name: string, node: string): boolean => datastore(d, name).nodes?.includes(node) ?? true;

/** The datastores a guest's own disks live on (root disk and volumes). */
const diskStores = (g: GuestSpec): string[] => [...new Set([g.storage, ...(g.kind === "lxc" ? g.volumes.map((v) => v.storage ?? g.storage) : [])])];

/** Datastores a guest needs on its node, each with the field that chose it. */
const neededStores = (g: GuestSpec, file: GuestFile, d: DefaultsFile): { store: string; field: (string | number)[]; from: string }[] => {
    /** A datastore the guest file names is located there; one from defaults.yaml at the guest's node, naming the default. */
    const need = (store: string, field: (string | number)[] | undefined, fallback: string) =>
        field ? { store, field, from: "" } : { store, field: ["node"], from: `defaults.yaml storage.${fallback}` };
    const out = [need(g.storage, file.storage ? ["storage"] : undefined, g.kind)];
    if (g.kind === "lxc") {
        g.volumes.forEach((v, i) => v.storage && out.push(need(v.storage, ["volumes", i, "storage"], "")));
        if (g.cloneFrom === undefined) out.push(need(g.osTemplate.storage, file.kind === "lxc" && file.osTemplate?.storage ? ["osTemplate", "storage"] : undefined, "templates"));
    } else {
        // Proxmox reads a VM's vendor data on the node it starts on.
        out.push(need(d.storage.snippets, undefined, "snippets"));
        if (g.cloneFrom === undefined) out.push(need(g.image.storage, file.kind === "vm" && file.image?.storage ? ["image", "storage"] : undefined, "images"));
    }
    return out;
};

const list = (xs: readonly string[]): string => xs.join(", ");

/** Nodes HA may run a guest on: its ha.nodes when strict, else any of the stack's nodes. */
export const haCandidates = (g: GuestSpec, ha: HaSpec, declared: Iterable<string> | undefined): string[] =>
    ha.strict && ha.nodes ? Object.keys(ha.nodes) : [...(declared ?? [g.node])];

export class ClusterCheck {
    readonly problems: Problem[] = [];
    private readonly declared?: ReadonlySet<string>;
    /** Each template with its copies, the template first. */
    private readonly families = new Map<number, GuestSpec[]>();

    constructor(
        private readonly parsed: ReadonlyMap<number, Parsed>,
        private readonly guests: Map<number, GuestSpec>,
        private readonly defaults: DefaultsFile,
        private readonly opts: ClusterOptions,
    ) {
        this.declared = opts.nodes ? new Set(opts.nodes) : undefined;
    }

    /** Runs every check; adds the copies to `guests` and sets each clone's `cloneSource`. */
    run(copies: ReadonlyMap<number, number>): void {
        this.checkDatastoreNodes();
        for (const p of this.parsed.values()) {
            this.checkNodeNames(p);
            this.checkCopyReferences(p, copies);
            this.expandCopies(p);
        }
        for (const g of this.guests.values()) {
            const p = this.parsed.get(g.copyOf ?? g.id)!;
            this.checkStores(g, p);
            this.resolveCloneSource(g, p);
            if (g.copyOf === undefined && p.guest.ha) this.checkHa(g, p, p.guest.ha);
        }
    }

    private undeclared(node: string): string | undefined {
        if (!this.declared || this.declared.has(node)) return undefined;
        return `node ${node} is not one of the stack's nodes (${list([...this.declared])}): declare it in stack config phoenix:nodes ` +
            `(pulumi config set --path 'phoenix:nodes.${node}.address' <address>) or use one of them`;
    }

    private checkDatastoreNodes(): void {
        for (const [name, ds] of Object.entries(this.defaults.datastores)) {
            (ds.nodes ?? []).forEach((n, i) => {
                const why = this.undeclared(n);
                if (why) this.problems.push(this.opts.defaultsSource().problemAt(["datastores", name, "nodes", i], why));
            });
        }
    }

    private checkNodeNames({ source, guest: g }: Parsed): void {
        const at = (field: (string | number)[], node: string, atKey = false) => {
            const why = this.undeclared(node);
            if (why) this.problems.push(source.problemAt(field, why, atKey));
        };
        if (g.node !== undefined) at(["node"], g.node);
        for (const n of Object.keys(g.nodes ?? {})) at(["nodes", n], n, true);
        for (const n of Object.keys(g.ha?.nodes ?? {})) at(["ha", "nodes", n], n, true);
    }

    /** A copy has no file of its own: other guests name the template, and each clone finds its node's copy. */
    private checkCopyReferences({ source, guest: g }: Parsed, copies: ReadonlyMap<number, number>): void {
        const refs: [(string | number)[], number][] = [
            ...(g.cloneFrom !== undefined ? [[["cloneFrom"], g.cloneFrom] as [(string | number)[], number]] : []),
            ...g.dependsOn.map((d, i): [(string | number)[], number] => [["dependsOn", i], d]),
            ...g.features.flatMap((f, i): [(string | number)[], number][] =>
                typeof f === "string" ? [] : [...(f.caFrom !== undefined ? [[["features", i, "caFrom"], f.caFrom] as [(string | number)[], number]] : []), ...f.after.map((a, j): [(string | number)[], number] => [["features", i, "after", j], a])],
            ),
        ];
        for (const [field, id] of refs) {
            const template = copies.get(id);
            if (template !== undefined) {
                this.problems.push(source.problemAt(field, `${id} is a copy of template ${template} (its nodes); name ${template}: each node's clones use that node's copy`));
            }
        }
    }

    /** A template's `nodes`: its own node and ID, plus one copy per other node with its own ID. */
    private expandCopies({ source, guest: g }: Parsed): void {
        if (!g.nodes) return;
        const entries = Object.entries(g.nodes);
        if (!g.template) {
            this.problems.push(source.problemAt(["nodes"], "only a template (template: true) is kept on several nodes; any other guest exists once, on its node", true));
            return;
        }
        const own = entries.filter(([, id]) => id === g.id).map(([n]) => n);
        if (own.length !== 1) {
            this.problems.push(source.problemAt(["nodes"], `must give this guest's own node with its ID ${g.id} exactly once (e.g. { pve1: ${g.id}, pve2: <another ID> })`, true));
            return;
        }
        const primary = this.guests.get(g.id)!;
        if (g.node !== undefined && g.node !== own[0]) {
            this.problems.push(source.problemAt(["node"], `is ${g.node}, but nodes puts ${g.id} on ${own[0]}; drop node (nodes says where each copy is) or make them agree`));
            return;
        }
        primary.node = own[0];
        // Copies of a container template run while they are provisioned: with a fixed address they would clash, so
        // each waits until the one before it is a template (stopped for good).
        const clashes = primary.kind === "lxc" && (primary.network.ip !== "dhcp" || primary.network.mac !== undefined);
        const family = [primary];
        for (const [node, id] of entries) {
            if (id === g.id) continue;
            const other = this.guests.get(id);
            const owner = this.parsed.get(id)?.source.file ?? (other ? `the copy of template ${other.copyOf} on ${other.node}` : undefined);
            if (owner) {
                this.problems.push(source.problemAt(["nodes", node], `${id} is already used by ${owner}; every copy needs an ID of its own`));
                continue;
            }
            const copy: GuestSpec = { ...primary, id, node, copyOf: g.id, ...(clashes ? { provisionAfter: family[family.length - 1].id } : {}) };
            this.guests.set(id, copy);
            family.push(copy);
        }
        this.families.set(g.id, family);
    }

    private checkStores(g: GuestSpec, { source, guest: file }: Parsed): void {
        for (const { store, field, from } of neededStores(g, file, this.defaults)) {
            if (isOn(this.defaults, store, g.node)) continue;
            const on = datastore(this.defaults, store).nodes!;
            const which = g.copyOf !== undefined ? `its copy ${g.id} on ${g.node}` : `node ${g.node}`;
            this.problems.push(source.problemAt(g.copyOf !== undefined ? ["nodes", g.node] : field,
                `datastore ${store}${from ? ` (${from})` : ""} is not on ${which}: defaults.yaml datastores.${store}.nodes lists ${list(on)}`, g.copyOf !== undefined));
        }
    }

    /** The copy of the clone source on this guest's node, else the template itself (a cross-node clone, checked). */
    private resolveCloneSource(g: GuestSpec, { source }: Parsed): void {
        if (g.cloneFrom === undefined) return;
        const template = this.guests.get(g.cloneFrom);
        if (!template || template.copyOf !== undefined) return; // unknown or a copy ID: reported already
        const copy = (this.families.get(template.id) ?? []).find((c) => c.node === g.node) ?? template;
        g.cloneSource = copy.id;
        if (copy.node === g.node) return;
        const why = this.crossNodeClone(g, copy);
        if (!why) return;
        const what = g.copyOf !== undefined ? `its copy ${g.id} on ${g.node}` : `this ${g.kind === "lxc" ? "container" : "VM"} is on ${g.node}`;
        this.problems.push(source.problemAt(["cloneFrom"],
            `guest ${copy.id} is on node ${copy.node} and ${what}: ${why}. Keep a copy of ${template.id} on ${g.node} ` +
                `(nodes: { ${copy.node}: ${template.id}, ${g.node}: <a free ID> } in ${template.file}), or use a datastore that allows it (defaults.yaml datastores)`));
    }

    /** Why Proxmox (and the provider) cannot clone `source` onto `g`'s node; undefined when it can. */
    private crossNodeClone(g: GuestSpec, source: GuestSpec): string | undefined {
        const d = this.defaults;
        const [from, to] = [source.node, g.node];
        const missing = (store: string, nodes: string[]) => nodes.filter((n) => !isOn(d, store, n));
        const target = g.fullClone ? g.storage : source.storage;
        const sharedOnBoth = (store: string, rule: string): string | undefined => {
            if (!datastore(d, store).shared) return `${rule}, and ${store} is not shared`;
            const gone = missing(store, [from, to]);
            return gone.length > 0 ? `${rule}, and ${store} is not on ${list(gone)}` : undefined;
        };
        if (g.kind === "lxc") return sharedOnBoth(target, "Proxmox clones a container to another node only onto shared storage (pct clone --target)");
        const sourceShared = diskStores(source).every((s) => datastore(d, s).shared && isOn(d, s, from));
        if (sourceShared) return sharedOnBoth(g.storage, "Proxmox clones a VM on shared storage straight to another node, and only onto shared storage");
        // The clone on the source's node would share the template's base volume, and qm migrate refuses a disk that is
        // a linked clone on local storage ("can't migrate ... as it's a clone of ...", qemu-server QemuMigrate.pm:584-587):
        // the provider's create would fail after the clone, leaving the VM on the source's node.
        if (!g.fullClone) {
            return `the provider clones it on ${from} and migrates it to ${to}, and Proxmox cannot migrate a linked clone of a template on local storage ` +
                `(its disk shares the template's base volume): set fullClone: true to copy the disks`;
        }
        const gone = missing(g.storage, [from, to]);
        return gone.length > 0
            ? `the provider clones it on ${from} into ${g.storage} and migrates it to ${to} with its disks, and ${g.storage} is not on ${list(gone)}`
            : undefined;
    }

    /**
     * HA restarts a guest on its node and recovers it on another when the node fails: a template never runs, the
     * preferred node must be the guest's own (or HA moves it away at once, and the next up moves it back), and a guest
     * HA may recover elsewhere needs its disks on storage that node reaches.
     */
    private checkHa(g: GuestSpec, { source }: Parsed, ha: HaSpec): void {
        if (g.template) {
            this.problems.push(source.problemAt(["ha"], "a template never runs, so HA has nothing to keep running; put ha on the guests that clone it", true));
            return;
        }
        const prefs = ha.nodes ?? {};
        if (ha.nodes) {
            const top = Math.max(...Object.values(prefs));
            if (prefs[g.node] === undefined || prefs[g.node] < top) {
                this.problems.push(source.problemAt(["ha", "nodes"],
                    `must give the guest's own node ${g.node} the highest priority (${top}${prefs[g.node] === undefined ? `; ${g.node} is not listed` : ""}): HA would move it away at once, and the next up would move it back`));
            }
        } else if (ha.strict) {
            this.problems.push(source.problemAt(["ha", "strict"], "needs ha.nodes: the nodes the guest may run on", true));
        }
        const elsewhere = haCandidates(g, ha, this.declared).filter((n) => n !== g.node);
        if (elsewhere.length === 0) return;
        const unshared = ha.replicated ? undefined : diskStores(g).find((s) => !datastore(this.defaults, s).shared || elsewhere.some((n) => !isOn(this.defaults, s, n)));
        if (unshared) {
            const gone = elsewhere.filter((n) => !isOn(this.defaults, unshared, n));
            this.problems.push(source.problemAt(["ha"],
                `HA may recover this guest on ${list(elsewhere)}, but its disks are on ${unshared}, which is ${datastore(this.defaults, unshared).shared ? `not on ${list(gone)}` : "not shared"}: ` +
                    `use shared storage (defaults.yaml datastores), limit HA to this node (ha: { nodes: { ${g.node}: 1 }, strict: true }), ` +
                    `or set ha.replicated: true if Proxmox storage replication keeps copies on those nodes`, true));
        }
        // A bind mount is a directory on this node unless marked shared: Proxmox refuses to migrate it (pve-container
        // src/PVE/LXC/Migrate.pm:66-73), a recovery elsewhere would start the container without its data, and storage
        // replication copies volumes only.
        const local = g.kind === "lxc" ? g.bindMounts.filter((b) => !b.shared) : [];
        if (local.length > 0) {
            const many = local.length > 1;
            this.problems.push(source.problemAt(["ha"],
                `HA may move or recover this container on ${list(elsewhere)}, but its bind mount${many ? "s" : ""} ${list(local.map((b) => b.hostPath))} ` +
                    `${many ? "are directories" : "is a directory"} on ${g.node} only: Proxmox refuses to migrate a local bind mount, and a recovery there would start it ` +
                    `without that data (storage replication does not copy it). Set shared: true on a bind mount whose directory every node mounts at the same path ` +
                    `(a cluster filesystem), or limit HA to this node (ha: { nodes: { ${g.node}: 1 }, strict: true })`, true));
        }
    }
}
