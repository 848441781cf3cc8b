// The providers as the twin models them, per type the program uses: what create and update store (the inputs, except
// what Proxmox decides: PROXMOX_FACTS in rules.ts), what they do on the node, what delete does, and what a refresh
// reads back. Change semantics (which inputs replace, which reboot) are the rules table's; this file is the behaviour.
import { createHash } from "crypto";
import { MOCK_CA_FINGERPRINT, MOCK_CA_PEM } from "../engine";
import { COMMAND, CONTAINER, DOWNLOAD, FW_OPTIONS, FW_RULES, SNIPPET, VM } from "./rules";
import { NodeError, type NodeGuest, type ProxmoxNode } from "./node";
import { copy, deepEqual, type Props, unwrapSecrets } from "./values";

/** One resource in the state file: what `pulumi up` leaves behind. */
export interface ResourceState {
    urn: string;
    type: string;
    name: string;
    custom: boolean;
    parent: string;
    id: string;
    inputs: Props;
    outputs: Props;
    dependencies: string[];
    propertyDependencies: Record<string, string[]>;
    protect: boolean;
    retainOnDelete: boolean;
    deletedWith: string;
    replaceWith: string[];
    deleteBeforeReplace: boolean;
    ignoreChanges: string[];
    replaceOnChanges: string[];
    provider: string;
}

/** What a command ran: which of its texts, and with which SSH key (a digest, never the key). */
export interface CommandRun {
    ran: "create" | "update" | "delete";
    key: string;
}

export interface Created {
    id: string;
    outputs: Props;
    run?: CommandRun;
}

export interface TypeModel {
    /** Bridged resources diff the config against the stored state; commands diff old inputs against new inputs (§7). */
    diffAgainst: "state" | "inputs";
    create(name: string, inputs: Props, node: ProxmoxNode): Created;
    update(old: ResourceState, inputs: Props, node: ProxmoxNode): { outputs: Props; run?: CommandRun };
    /** Runs the provider's delete (the engine decides whether it is called). */
    delete(old: ResourceState, node: ProxmoxNode): CommandRun | undefined;
    /** What a refresh stores; undefined when the resource is gone. */
    read(res: ResourceState, node: ProxmoxNode): Props | undefined;
    /** Whether the provider may restart the guest for a reboot-requiring change: a container unless a template (the safe side), a VM by its real status. */
    running?(old: ResourceState, node: ProxmoxNode): boolean;
}

const ipOf = (inputs: Props): string | undefined => {
    const address = unwrapSecrets(inputs).initialization?.ipConfigs?.[0]?.ipv4?.address as string | undefined;
    return address === undefined ? undefined : address === "dhcp" ? "dhcp-lease" : address.split("/")[0];
};

// --- containers and VMs -----------------------------------------------------------------------------------------

/** A guest as Proxmox creates it from scratch (a clone copies its source instead). */
const blankGuest = (kind: NodeGuest["kind"], id: number, node: string, set: Partial<NodeGuest> = {}): NodeGuest => ({
    kind, id, node, running: false, template: false, disks: [], mounts: [], unprivileged: false, raw: [], idmaps: [], firewall: { rules: [] }, snapshots: [], agent: false, ...set,
});

/** Delete removes the guest (the provider stops it first); a refresh reads it back, or finds it gone. */
const machineLifecycle = (readBack: (g: NodeGuest, inputs: Props) => Props): Pick<TypeModel, "delete" | "read"> => ({
    delete(old, node) {
        node.remove(Number(old.id));
        return undefined;
    },
    read(res, node) {
        const g = node.guests.get(Number(res.id));
        return g ? { ...res.outputs, ...readBack(g, res.inputs) } : undefined;
    },
});

/** What a container's read stores from the node, over the inputs or the old state (§2.3). */
const containerRead = (g: NodeGuest, inputs: Props): Props => {
    const clone = inputs.clone !== undefined;
    return {
        vmId: g.id,
        disk: { ...(inputs.disk ?? {}), size: g.disks[0].sizeGb, datastoreId: g.disks[0].storage },
        started: g.running,
        ipv4: g.running && g.ipv4 ? { eth0: g.ipv4 } : {},
        idmaps: copy(g.idmaps),
        ...(!clone || inputs.template === true ? { template: g.template } : {}),
        ...(!clone || inputs.unprivileged === true ? { unprivileged: g.unprivileged } : {}),
    };
};

/** The mount points the inputs give, classified as Proxmox does (pve-container src/PVE/LXC/Config.pm:1897-1904). */
const mountsOf = (i: Props): NodeGuest["mounts"] =>
    (i.mountPoints ?? []).map((m: Props, n: number) => {
        const volume = String(m.volume);
        return { key: `mp${n}`, type: volume.startsWith("/dev/") ? "device" : volume.startsWith("/") ? "bind" : "volume" };
    });

const container: TypeModel = {
    diffAgainst: "state",
    create(_name, inputs, node) {
        const i = unwrapSecrets(inputs);
        let g: NodeGuest;
        if (i.clone) {
            g = node.cloneGuest(Number(i.clone.vmId), Number(i.vmId), { full: i.clone.full ?? true, storage: i.clone.datastoreId, node: i.nodeName });
            if ((i.idmaps ?? []).length > 0) g.idmaps = copy(i.idmaps);
            // The provider sets the clone's own mount points after cloning.
            g.mounts = mountsOf(i);
        } else {
            g = node.add(blankGuest("lxc", Number(i.vmId), i.nodeName, {
                disks: [{ interface: "rootfs", storage: i.disk?.datastoreId ?? "local", sizeGb: i.disk?.size ?? 4 }],
                mounts: mountsOf(i),
                unprivileged: i.unprivileged ?? false,
                idmaps: copy(i.idmaps ?? []),
            }));
        }
        g.ipv4 = ipOf(i);
        g.running = i.started === true;
        return { id: String(g.id), outputs: { ...inputs, ...containerRead(g, inputs) } };
    },
    update(old, inputs, node) {
        const g = node.guest(Number(old.id), "CT");
        const i = unwrapSecrets(inputs);
        if (typeof i.disk?.size === "number" && i.disk.size > g.disks[0].sizeGb) g.disks[0].sizeGb = i.disk.size;
        if (!deepEqual(i.idmaps ?? [], g.idmaps)) g.idmaps = copy(i.idmaps ?? []);
        g.ipv4 = ipOf(i);
        if (typeof i.started === "boolean" && i.started !== old.outputs.started) g.running = i.started;
        // The update ends with a read (CT:4179).
        return { outputs: { ...inputs, ...containerRead(g, inputs) } };
    },
    ...machineLifecycle(containerRead),
    // The provider reboots when `!template && started && rebootRequired` (CT:4163-4176), `started` being the planned
    // value. That the planned value is the last one read while the program ignores `started` is the reference's
    // inference (§2.1 "inferred"), not a statement of the source: a state that says stopped (a container never re-read
    // since its create) does not prove that no reboot comes. So the twin takes the safe side and announces the reboot
    // for any container but a template, whose `template: true` the provider reads back (CT:3454) and which it never
    // reboots (CT:4163). The VM model needs none of this: its reboot is decided from the real status (VM:2051-2082).
    running: (old) => old.outputs.template !== true,
};

// --- VMs --------------------------------------------------------------------------------------------------------

const vmRead = (g: NodeGuest, inputs: Props): Props => {
    const i = unwrapSecrets(inputs);
    const disks = (inputs.disks ?? []).map((d: Props) => {
        const nd = g.disks.find((x) => x.interface === d.interface);
        return nd ? { ...d, size: nd.sizeGb, datastoreId: nd.storage } : d;
    });
    return {
        vmId: g.id,
        // The provider finds a VM on whichever node it is (GetVMNodeName) and stores that node (VM:4306-4322).
        nodeName: g.node,
        disks,
        ...(g.template ? {} : { started: g.running }),
        ...(g.running && g.agent && g.ipv4 ? { ipv4Addresses: [["127.0.0.1"], [g.ipv4]] } : { ipv4Addresses: [] }),
        ...(i.clone === undefined || i.template === true ? { template: g.template } : {}),
    };
};

const applyVmDisks = (g: NodeGuest, inputs: Props): void => {
    for (const d of unwrapSecrets(inputs).disks ?? []) {
        const nd = g.disks.find((x) => x.interface === d.interface);
        if (!nd) {
            g.disks.push({ interface: d.interface, storage: d.datastoreId, sizeGb: d.size ?? 8 });
            continue;
        }
        if (typeof d.size === "number" && d.size < nd.sizeGb) {
            throw new NodeError(`VM ${g.id} disk ${d.interface}: requested size ${d.size}G is lower than current size ${nd.sizeGb}G`);
        }
        if (d.datastoreId && d.datastoreId !== nd.storage) nd.storage = d.datastoreId; // move_disk
        if (typeof d.size === "number") nd.sizeGb = d.size;
    }
};

const vm: TypeModel = {
    diffAgainst: "state",
    create(_name, inputs, node) {
        const i = unwrapSecrets(inputs);
        const g = i.clone
            ? node.cloneGuest(Number(i.clone.vmId), Number(i.vmId), { full: i.clone.full ?? true, storage: i.clone.datastoreId, node: i.nodeName })
            : node.add(blankGuest("vm", Number(i.vmId), i.nodeName));
        applyVmDisks(g, inputs);
        g.agent = i.agent?.enabled ?? g.agent;
        g.template = i.template === true;
        g.running = i.started === true && !g.template;
        g.ipv4 = ipOf(i);
        return { id: String(g.id), outputs: { ...inputs, ...vmRead(g, inputs) } };
    },
    update(old, inputs, node) {
        const g = node.guest(Number(old.id), "VM");
        const i = unwrapSecrets(inputs);
        if (i.nodeName !== g.node) g.node = i.nodeName; // qm migrate (migrate: true)
        applyVmDisks(g, inputs);
        if (i.template === true && !g.template) {
            g.template = true;
            g.running = false;
        }
        if (typeof i.started === "boolean" && !g.template) g.running = i.started;
        g.agent = i.agent?.enabled ?? g.agent;
        g.ipv4 = ipOf(i);
        return { outputs: { ...inputs, ...vmRead(g, inputs) } };
    },
    ...machineLifecycle(vmRead),
    running: (old, node) => node.guests.get(Number(old.id))?.running === true,
};

// --- files --------------------------------------------------------------------------------------------------------

const fileModel = (idOf: (i: Props) => string, overwrite: (i: Props) => boolean): TypeModel => ({
    diffAgainst: "state",
    create(_name, inputs, node) {
        const i = unwrapSecrets(inputs);
        const id = idOf(i);
        if (node.files.has(id) && !overwrite(i)) throw new NodeError(`refusing to override existing file ${id}`);
        node.files.add(id);
        return { id, outputs: { ...inputs, size: 1 } };
    },
    update: (old, inputs) => ({ outputs: { ...inputs, size: old.outputs.size } }),
    delete(old, node) {
        node.files.delete(old.id);
        return undefined;
    },
    read: (res, node) => (node.files.has(res.id) ? res.outputs : undefined),
});

const download = fileModel((i) => `${i.datastoreId}:${i.contentType}/${i.fileName}`, (i) => i.overwriteUnmanaged === true);
// A snippet with the same name is overwritten with a warning (overwrite default true, FL:370-389).
const snippet = fileModel((i) => `${i.datastoreId}:${i.contentType}/${i.sourceRaw?.fileName}`, (i) => i.overwrite !== false);

// --- firewall -----------------------------------------------------------------------------------------------------

const scopeOf = (inputs: Props, node: ProxmoxNode): NodeGuest => node.guest(Number(inputs.containerId ?? inputs.vmId), "guest");

/** The options the provider PUTs, all of them on every create and update (FO:202-234), as they are kept in the <id>.fw file. */
const FW_OPTION_KEYS = ["dhcp", "enabled", "ipfilter", "logLevelIn", "logLevelOut", "macfilter", "ndp", "inputPolicy", "outputPolicy", "radv"];
const fwOptionsOf = (inputs: Props): Record<string, unknown> => Object.fromEntries(FW_OPTION_KEYS.filter((k) => inputs[k] !== undefined).map((k) => [k, inputs[k]]));

const fwOptions: TypeModel = {
    diffAgainst: "state",
    create(name, inputs, node) {
        scopeOf(inputs, node).firewall.options = fwOptionsOf(inputs);
        return { id: `${name}-options`, outputs: { ...inputs } };
    },
    update(_old, inputs, node) {
        scopeOf(inputs, node).firewall.options = fwOptionsOf(inputs);
        return { outputs: { ...inputs } };
    },
    delete: () => undefined, // FO:306-310: state only
    // The options the node's file has, over the stored ones: Proxmox returns only the keys the file sets (pve-firewall
    // API2/Firewall/VM.pm:95; a missing file parses to no options, Firewall.pm:3449, 3692), and the provider sets only the
    // keys it gets (FO:236-295). So an option changed on the node reads back, and a deleted file reads as unchanged.
    read(res, node) {
        const g = node.guests.get(Number(res.inputs.containerId ?? res.inputs.vmId));
        return { ...res.outputs, ...(g?.firewall.options ?? {}) };
    },
};

const fwRules: TypeModel = {
    diffAgainst: "state",
    create(name, inputs, node) {
        const g = scopeOf(inputs, node);
        if (g.firewall.rules.length > 0) throw new NodeError(`guest ${g.id}: Existing rules detected. Aborting...`);
        g.firewall.rules = copy(inputs.rules ?? []);
        return { id: `${name}-rules`, outputs: { ...inputs } };
    },
    update(_old, inputs, node) {
        scopeOf(inputs, node).firewall.rules = copy(inputs.rules ?? []);
        return { outputs: { ...inputs } };
    },
    delete(old, node) {
        const g = node.guests.get(Number(old.inputs.containerId ?? old.inputs.vmId));
        if (g) g.firewall.rules = [];
        return undefined;
    },
    read(res, node) {
        const g = node.guests.get(Number(res.inputs.containerId ?? res.inputs.vmId));
        return g ? { ...res.outputs, rules: copy(g.firewall.rules) } : undefined;
    },
};

// --- commands -----------------------------------------------------------------------------------------------------

const keyDigests = new Map<string, string>();
const keyDigest = (connection: unknown): string => {
    const c = unwrapSecrets(connection) as Props | undefined;
    const key = String(c?.privateKey ?? c?.password ?? "");
    let d = keyDigests.get(key);
    if (d === undefined) keyDigests.set(key, (d = createHash("sha256").update(key).digest("hex").slice(0, 12)));
    return d;
};

/** The guest ID a step belongs to and its role, from its name `<id>-<role>`. */
const roleOf = (name: string): string => name.replace(/^\d+-/, "");

/** stdout of a text run on the node: step_ca's, and the command that re-prints its root, print the root certificate. */
const stdoutOf = (role: string, phase: "create" | "update", text: string): string =>
    role === "feature-step_ca" && (phase === "create" || /PHOENIX_CA_FINGERPRINT=/.test(text)) ? `${MOCK_CA_PEM}\nPHOENIX_CA_FINGERPRINT=${MOCK_CA_FINGERPRINT}` : "";

let commandIds = 0;

const command: TypeModel = {
    diffAgainst: "inputs",
    create(name, inputs, node) {
        const text = String(unwrapSecrets(inputs.create) ?? "");
        const stdout = text ? stdoutOf(roleOf(name), "create", text) : "";
        if (text) node.run(roleOf(name), text);
        return { id: `${name}-${(++commandIds).toString(16).padStart(8, "0")}`, outputs: { ...inputs, stdout, stderr: "" }, run: { ran: "create", key: keyDigest(inputs.connection) } };
    },
    update(_old, inputs, node) {
        const i = unwrapSecrets(inputs);
        const phase = i.update !== undefined ? "update" : "create";
        const text = String(i.update ?? i.create ?? "");
        if (text) node.run(roleOf(_old.name), text);
        return { outputs: { ...inputs, stdout: stdoutOf(roleOf(_old.name), phase, text), stderr: "" }, run: { ran: phase, key: keyDigest(inputs.connection) } };
    },
    delete(old, node) {
        const text = unwrapSecrets(old.inputs.delete) as string | undefined;
        if (!text) return undefined;
        node.run(roleOf(old.name), text);
        return { ran: "delete", key: keyDigest(old.inputs.connection) };
    },
    read: (res) => res.outputs, // no Read: state unchanged (GP:1353-1364)
};

/** Providers and anything without a model: outputs echo inputs, changes are in place. */
const echo: TypeModel = {
    diffAgainst: "inputs",
    create: (name, inputs) => ({ id: `${name}-id`, outputs: { ...inputs } }),
    update: (_old, inputs) => ({ outputs: { ...inputs } }),
    delete: () => undefined,
    read: (res) => res.outputs,
};

const MODELS: Record<string, TypeModel> = {
    [CONTAINER]: container,
    [VM]: vm,
    [DOWNLOAD]: download,
    [SNIPPET]: snippet,
    [FW_OPTIONS]: fwOptions,
    [FW_RULES]: fwRules,
    [COMMAND]: command,
};

export const modelFor = (type: string): TypeModel => MODELS[type] ?? echo;
