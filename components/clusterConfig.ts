// The cluster part of stack config: which Proxmox nodes the stack may use and how to reach each over SSH, which
// guests the next `up` may replace, and which HA affinity API the cluster speaks. A one-node stack keeps the original
// keys (phoenix:node, phoenix:nodeAddress, phoenix:sshPort, phoenix:sshUser, phoenix:nodeHostKey); a cluster declares
// phoenix:nodes instead:
//   phoenix:nodes:
//     pve1: { address: 10.0.0.13 }
//     pve2: { address: 10.0.0.14, port: 22, user: root, hostKey: "ssh-ed25519 AAAA..." }
import type * as pulumi from "@pulumi/pulumi";
import { NodeName } from "../catalog/fields";
import { configError as fail, guestIds } from "./stackConfig";

/** SSH access to one node: Phoenix's pct/qm commands, the jump host into its VMs, the provider's uploads. */
export interface NodeAccess {
    address: string;
    port: number;
    user: string;
    hostKey?: string;
}

export interface ClusterSettings {
    /** Node of the guests that name none. */
    node: string;
    /** Every node the stack may use, in the order declared. */
    nodes: ReadonlyMap<string, NodeAccess>;
    /** phoenix:sshUser: the default user of every node, and the provider's (its SSH block has one user for all nodes). */
    sshUser: string;
    /** Guests whose replacement or removal the next `up` may carry out (a container's move to another node). */
    allowReplace: ReadonlySet<number>;
    /** How HA node preferences reach Proxmox: rules (Proxmox VE 9) or groups (Proxmox VE 8). */
    haAffinity: "rules" | "groups";
}

const NODE_KEYS = new Set(["address", "port", "user", "hostKey"]);

const isNodeName = (s: string): boolean => NodeName.safeParse(s).success;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const nonBlank = (v: unknown): v is string => typeof v === "string" && v.trim() !== "" && !/\s/.test(v.trim());

/** `pulumi config set --path` stores integers as numbers; a hand-written stack file may quote them. */
const port = (v: unknown): number | undefined => {
    const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
    return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
};

const readNodes = (raw: unknown, defaults: { port: number; user: string }): Map<string, NodeAccess> => {
    const example = '{ pve1: { address: 10.0.0.13 }, pve2: { address: 10.0.0.14, port: 22, user: root, hostKey: "ssh-ed25519 ..." } }';
    if (!isObject(raw) || Object.keys(raw).length === 0) return fail("nodes", `a map of node name to SSH access, e.g. ${example}`, raw);
    const nodes = new Map<string, NodeAccess>();
    for (const [name, v] of Object.entries(raw)) {
        const at = `nodes.${name}`;
        if (!isNodeName(name)) fail(at, "a Proxmox node name (letters, digits and inner hyphens)", name);
        if (!isObject(v)) return fail(at, "{ address, port?, user?, hostKey? }", v);
        const unknown = Object.keys(v).filter((k) => !NODE_KEYS.has(k));
        if (unknown.length > 0) fail(`${at}.${unknown[0]}`, `one of ${[...NODE_KEYS].join(", ")}`, unknown[0]);
        if (!nonBlank(v.address)) fail(`${at}.address`, "the node's SSH address (host name or IP)", v.address);
        if (v.user !== undefined && !nonBlank(v.user)) fail(`${at}.user`, "an SSH user name", v.user);
        if (v.hostKey !== undefined && !(typeof v.hostKey === "string" && v.hostKey.trim() !== "")) fail(`${at}.hostKey`, "the node's SSH host key", v.hostKey);
        const p = v.port === undefined ? defaults.port : port(v.port);
        if (p === undefined) fail(`${at}.port`, "a port 1..65535", v.port);
        nodes.set(name, { address: (v.address as string).trim(), port: p!, user: (v.user as string | undefined) ?? defaults.user, hostKey: v.hostKey as string | undefined });
    }
    return nodes;
};

const readGuestIds = (key: string, raw: unknown): number[] => {
    if (raw === undefined) return [];
    return Array.isArray(raw) ? guestIds(key, raw) : fail(key, "a list of guest IDs, e.g. [101]", raw);
};

export const readClusterSettings = (cfg: pulumi.Config): ClusterSettings => {
    const sshPort = cfg.getNumber("sshPort", { min: 1, max: 65535 }) ?? 22;
    const sshUser = cfg.get("sshUser") ?? "root";
    const rawNodes = cfg.getObject<unknown>("nodes");
    let node: string;
    let nodes: Map<string, NodeAccess>;
    if (rawNodes === undefined) {
        node = cfg.require("node");
        if (!isNodeName(node)) fail("node", "a Proxmox node name (letters, digits and inner hyphens)", node);
        nodes = new Map([[node, { address: cfg.require("nodeAddress"), port: sshPort, user: sshUser, hostKey: cfg.get("nodeHostKey") }]]);
    } else {
        // One source of truth per node: the one-node keys next to phoenix:nodes would leave it open which one counts.
        for (const key of ["nodeAddress", "nodeHostKey"]) {
            if (cfg.get(key) !== undefined) fail(key, `no value when phoenix:nodes is set (give the node's address and hostKey under phoenix:nodes.<node>)`, cfg.get(key));
        }
        nodes = readNodes(rawNodes, { port: sshPort, user: sshUser });
        const declared = [...nodes.keys()];
        node = cfg.get("node") ?? (declared.length === 1 ? declared[0] : fail("node", `the node of guests that name none, one of ${declared.join(", ")}`, undefined));
        if (!nodes.has(node)) fail("node", `one of the nodes in phoenix:nodes (${declared.join(", ")})`, node);
    }
    const haAffinity = cfg.get("haAffinity") ?? "rules";
    if (haAffinity !== "rules" && haAffinity !== "groups") fail("haAffinity", '"rules" (Proxmox VE 9) or "groups" (Proxmox VE 8)', haAffinity);
    return { node, nodes, sshUser, allowReplace: new Set(readGuestIds("allowReplace", cfg.getObject<unknown>("allowReplace"))), haAffinity: haAffinity as "rules" | "groups" };
};
