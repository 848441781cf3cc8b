// What every guest component of a stack shares: the catalog, the stack settings, the Proxmox provider and the SSH
// connection to the node (for the operations the provider has no argument for).
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import type * as command from "@pulumi/command";
import type { Catalog } from "../catalog/model";
import type { StackSettings } from "./stackConfig";

export const TYPE_PREFIX = "phoenix:index:";

export interface StackContext {
    catalog: Catalog;
    settings: StackSettings;
    provider: proxmox.Provider;
    nodeConnection: command.types.input.remote.ConnectionArgs;
}

/** One explicit provider from stack config; the API token stays a secret, the SSH block serves idmaps and snippets. */
export const createProvider = (s: StackSettings): proxmox.Provider =>
    new proxmox.Provider("proxmoxve", {
        endpoint: s.endpoint,
        ...(s.auth.kind === "token" ? { apiToken: s.auth.apiToken } : { username: s.auth.username, password: s.auth.password }),
        insecure: s.insecure,
        minTls: "1.2",
        ssh: {
            username: s.nodeSsh.user,
            agent: false,
            privateKey: s.sshPrivateKey,
            nodes: [{ name: s.node, address: s.nodeSsh.address, port: s.nodeSsh.port }],
        },
    });

/** SSH to the node for pct/qm operations; generous dial limits because the node may be busy cloning. */
export const nodeConnection = (s: StackSettings): command.types.input.remote.ConnectionArgs => ({
    host: s.nodeSsh.address,
    port: s.nodeSsh.port,
    user: s.nodeSsh.user,
    privateKey: s.sshPrivateKey,
    hostKey: s.nodeSsh.hostKey,
    dialErrorLimit: 20,
    perDialTimeout: 15,
});

export const createStackContext = (catalog: Catalog, settings: StackSettings): StackContext => ({
    catalog,
    settings,
    provider: createProvider(settings),
    nodeConnection: nodeConnection(settings),
});

