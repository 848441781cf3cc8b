// What every guest component of a stack shares: the catalog, the stack settings, the Proxmox provider, and the SSH
// connections to the nodes (for the operations the provider has no argument for). Every connection to a node is built
// here, by nodeConnection and nodeJumpHost, and nowhere else.
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import * as pulumi from "@pulumi/pulumi";
import type * as command from "@pulumi/command";
import type { Catalog } from "../catalog/model";
import type { NodeAccess } from "./clusterConfig";
import { NodeFiles } from "./nodeFiles";
import { ContainerPlacement } from "./placement";
import type { StackSettings } from "./stackConfig";

export const TYPE_PREFIX = "phoenix:index:";

type Connection = command.types.input.remote.ConnectionArgs;
type JumpHost = command.types.input.remote.ProxyConnectionArgs;

export interface StackContext {
    catalog: Catalog;
    settings: StackSettings;
    provider: proxmox.Provider;
    /** SSH to a node, for the pct/qm commands of the guests on it (one object per node, shared by its commands). */
    nodeConnection(node: string): Connection;
    /** A node as the jump host into the VMs on it (their in-guest steps). */
    nodeJumpHost(node: string): JumpHost;
    /** Downloads and snippets, one resource per file and place. */
    files: NodeFiles;
    /** Where the containers are now: a container the catalog moves to another node is refused. */
    placement: ContainerPlacement;
}

/**
 * One explicit provider from stack config; the API token stays a secret. Its SSH block (uploads of snippets, id maps)
 * lists every node, so it reaches the node of each guest; it has one user for all of them (phoenix:sshUser).
 */
export const createProvider = (s: StackSettings): proxmox.Provider =>
    new proxmox.Provider("proxmoxve", {
        endpoint: s.endpoint,
        ...(s.auth.kind === "token" ? { apiToken: s.auth.apiToken } : { username: s.auth.username, password: s.auth.password }),
        insecure: s.insecure,
        minTls: "1.2",
        ssh: {
            username: s.sshUser,
            agent: false,
            privateKey: s.sshPrivateKey,
            nodes: [...s.nodes].map(([name, a]) => ({ name, address: a.address, port: a.port })),
        },
    });

const accessOf = (s: StackSettings, node: string): NodeAccess => {
    const a = s.nodes.get(node);
    // The catalog refuses a guest on an undeclared node before anything is built: reaching this is a program bug.
    if (!a) throw new Error(`node ${node} is not in the stack's nodes (${[...s.nodes.keys()].join(", ")})`);
    return a;
};

/** SSH to the node for pct/qm operations; generous dial limits because the node may be busy cloning. */
export const nodeConnection = (s: StackSettings, node: string): Connection => {
    const a = accessOf(s, node);
    return { host: a.address, port: a.port, user: a.user, privateKey: s.sshPrivateKey, hostKey: a.hostKey, dialErrorLimit: 20, perDialTimeout: 15 };
};

/** The node as jump host: the VM's own connection carries the dial limits. */
export const nodeJumpHost = (s: StackSettings, node: string): JumpHost => {
    const a = accessOf(s, node);
    return { host: a.address, port: a.port, user: a.user, privateKey: s.sshPrivateKey, hostKey: a.hostKey };
};

const memoized = <T>(build: (node: string) => T): ((node: string) => T) => {
    const made = new Map<string, T>();
    return (node) => {
        let v = made.get(node);
        if (v === undefined) made.set(node, (v = build(node)));
        return v;
    };
};

/**
 * The provider's SSH block has one user for every node (phoenix:sshUser): a node whose own user differs gets the
 * provider's uploads and id-map edits as phoenix:sshUser, and Phoenix's commands as its own user. Said before it fails.
 */
const warnNodeUsers = (s: StackSettings, provider: proxmox.Provider): void => {
    for (const [name, a] of s.nodes) {
        if (a.user === s.sshUser) continue;
        void pulumi.log.warn(
            `stack config phoenix:nodes.${name}.user is ${a.user}, but the provider logs in to every node as phoenix:sshUser (${s.sshUser}) for its snippet ` +
                `uploads and id maps (its SSH block has one user for all nodes): ${name} must accept ${s.sshUser} too, or set phoenix:sshUser to a user every node accepts`,
            provider,
        );
    }
};

export const createStackContext = (catalog: Catalog, settings: StackSettings): StackContext => {
    const provider = createProvider(settings);
    warnNodeUsers(settings, provider);
    return {
        catalog,
        settings,
        provider,
        nodeConnection: memoized((node) => nodeConnection(settings, node)),
        nodeJumpHost: memoized((node) => nodeJumpHost(settings, node)),
        files: new NodeFiles(catalog.defaults.datastores),
        placement: new ContainerPlacement(provider, settings.allowReplace),
    };
};
