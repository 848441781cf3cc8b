// The cluster part of stack config: which Proxmox nodes the stack may use and how to reach each over SSH, which
// guests the next `up` may replace, and which HA affinity API the cluster speaks. A one-node stack keeps the original
// keys (phoenix:node, phoenix:nodeAddress, phoenix:sshPort, phoenix:sshUser, phoenix:nodeHostKey); a cluster declares
// phoenix:nodes instead:
//   phoenix:nodes:
//     pve1: { address: 10.0.0.13 }
//     pve2: { address: 10.0.0.14, port: 22, user: root, hostKey: "ssh-ed25519 AAAA..." }
import type * as pulumi from "@pulumi/pulumi";
import { CONFIG_DEFAULTS } from "./configKeys";
import { PORT_EXPECTED, addressProblem, nodeNameProblem, portOf, sshPublicKeyProblem, sshUserProblem } from "./configValues";
import { configError as fail, guestIds, notShown, requireKey } from "./stackConfig";

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

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A value's problem, reported at its key: the form each key takes is in configValues.ts. */
const check = (key: string, problem: (v: unknown) => string | undefined, v: unknown, hidden?: string): void => {
    const wrong = problem(v);
    if (wrong) fail(key, wrong, v, hidden !== undefined ? notShown(v, hidden) : undefined);
};

/** A host key is public, but a value that is none may be the private key, pasted by mistake: it is never echoed. */
const HOST_KEY_HIDDEN = "what is here may be a private key pasted by mistake";

const readPort = (key: string, v: unknown): number => portOf(v) ?? fail(key, PORT_EXPECTED, v);

/** A node's SSH access, each value checked at its key (phoenix:nodes.<node>.address, or phoenix:nodeAddress). */
const nodeAccess = (keys: Record<keyof NodeAccess, string>, v: { address: unknown; port: unknown; user: unknown; hostKey: unknown }, defaults: { port: number; user: string }): NodeAccess => {
    check(keys.address, addressProblem, v.address);
    if (v.user !== undefined) check(keys.user, sshUserProblem, v.user);
    if (v.hostKey !== undefined) check(keys.hostKey, sshPublicKeyProblem, v.hostKey, HOST_KEY_HIDDEN);
    return {
        address: v.address as string,
        port: v.port === undefined ? defaults.port : readPort(keys.port, v.port),
        user: (v.user as string | undefined) ?? defaults.user,
        hostKey: (v.hostKey as string | undefined)?.trim(),
    };
};

const readNodes = (raw: unknown, defaults: { port: number; user: string }): Map<string, NodeAccess> => {
    const example = '{ pve1: { address: 10.0.0.13 }, pve2: { address: 10.0.0.14, port: 22, user: root, hostKey: "ssh-ed25519 ..." } }';
    if (!isObject(raw) || Object.keys(raw).length === 0) return fail("nodes", `a map of node name to SSH access, e.g. ${example}`, raw);
    const nodes = new Map<string, NodeAccess>();
    for (const [name, v] of Object.entries(raw)) {
        const at = `nodes.${name}`;
        check(at, nodeNameProblem, name);
        if (!isObject(v)) return fail(at, "{ address, port?, user?, hostKey? }", v);
        const unknown = Object.keys(v).filter((k) => !NODE_KEYS.has(k));
        if (unknown.length > 0) fail(`${at}.${unknown[0]}`, `one of ${[...NODE_KEYS].join(", ")}`, unknown[0]);
        const keys = { address: `${at}.address`, port: `${at}.port`, user: `${at}.user`, hostKey: `${at}.hostKey` };
        nodes.set(name, nodeAccess(keys, { address: v.address, port: v.port, user: v.user, hostKey: v.hostKey }, defaults));
    }
    return nodes;
};

const readGuestIds = (key: string, raw: unknown): number[] => {
    if (raw === undefined) return [];
    return Array.isArray(raw) ? guestIds(key, raw) : fail(key, "a list of guest IDs, e.g. [101]", raw);
};

export const readClusterSettings = (cfg: pulumi.Config): ClusterSettings => {
    const rawPort = cfg.get("sshPort");
    const sshPort = rawPort === undefined ? CONFIG_DEFAULTS.sshPort : readPort("sshPort", rawPort);
    const sshUser = cfg.get("sshUser") ?? CONFIG_DEFAULTS.sshUser;
    check("sshUser", sshUserProblem, sshUser);
    const rawNodes = cfg.getObject<unknown>("nodes");
    let node: string;
    let nodes: Map<string, NodeAccess>;
    if (rawNodes === undefined) {
        node = requireKey(cfg, "node");
        check("node", nodeNameProblem, node);
        const access = { address: requireKey(cfg, "nodeAddress"), port: undefined, user: undefined, hostKey: cfg.get("nodeHostKey") };
        nodes = new Map([[node, nodeAccess({ address: "nodeAddress", port: "sshPort", user: "sshUser", hostKey: "nodeHostKey" }, access, { port: sshPort, user: sshUser })]]);
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
    const haAffinity = cfg.get("haAffinity") ?? CONFIG_DEFAULTS.haAffinity;
    if (haAffinity !== "rules" && haAffinity !== "groups") fail("haAffinity", '"rules" (Proxmox VE 9) or "groups" (Proxmox VE 8)', haAffinity);
    return { node, nodes, sshUser, allowReplace: new Set(readGuestIds("allowReplace", cfg.getObject<unknown>("allowReplace"))), haAffinity: haAffinity as "rules" | "groups" };
};
