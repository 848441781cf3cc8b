// Everything the program reads from stack config, read in one place and validated before any resource exists.
// Pulumi.yaml declares each key with its type, default and description; secrets stay Outputs end to end.
import * as pulumi from "@pulumi/pulumi";
import { type ClusterSettings, readClusterSettings } from "./clusterConfig";

/** Nodes and their SSH access, allowReplace and the HA affinity API: see clusterConfig.ts. */
export interface StackSettings extends ClusterSettings {
    /** Requested guest IDs, or "all". */
    guests: number[] | "all";
    catalog: string;
    endpoint: string;
    insecure: boolean;
    /** How the provider logs in: an API token, or user and password (bind mounts need root@pam, which tokens never are). */
    auth: { kind: "token"; apiToken: pulumi.Output<string> } | { kind: "password"; username: string; password: pulumi.Output<string> };
    sshPrivateKey: pulumi.Output<string>;
    /** Key for SSH into VMs (default: the node key). */
    guestSshPrivateKey: pulumi.Output<string>;
    /** Public keys for the VMs' cloud-init user; read on first use, so a stack of containers needs none. */
    sshPublicKeys(): pulumi.Output<string[]>;
    /** What is wrong with phoenix:sshPublicKeys (checked before anything is registered when VMs are selected). */
    sshPublicKeysProblem(): string | undefined;
    /** A secret from stack config, by key (catalog secrets name their keys). */
    secret(key: string): pulumi.Output<string>;
    /** Whether a key is set (tested without reading it as plain text: getSecret, never get). */
    has(key: string): boolean;
}

export const SSH_PUBLIC_KEYS_FIX = `pulumi config set --secret --path 'sshPublicKeys[0]' "$(cat ~/.ssh/id_ed25519.pub)"`;

/** phoenix:sshPublicKeys as the program needs it: a non-empty list of one-line keys (a line break would be a second key). */
const sshPublicKeysProblem = (raw: string | undefined): string | undefined => {
    let keys: unknown;
    try {
        keys = raw === undefined ? undefined : JSON.parse(raw);
    } catch {
        keys = raw;
    }
    const ok = Array.isArray(keys) && keys.length > 0 && keys.every((k) => typeof k === "string" && k.trim() !== "" && !/[\x00-\x1f\x7f]/.test(k));
    return ok ? undefined : "expected a list of SSH public keys for the VMs' cloud-init user, one line each";
};

export const configError = (key: string, expected: string, got: unknown): never => {
    throw new pulumi.RunError(`stack config phoenix:${key}: expected ${expected}, received ${JSON.stringify(got)}`);
};

/** Guest IDs from a config list (integers, or digit strings as `pulumi config set --path` may store them). */
export const guestIds = (key: string, raw: unknown[]): number[] =>
    raw.map((v) => (typeof v === "number" && Number.isInteger(v) ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : configError(key, "guest IDs (integers)", v)));

const parseGuests = (raw: unknown): number[] => {
    if (!Array.isArray(raw) || raw.length === 0) return configError("guests", "a non-empty list of guest IDs, e.g. [103, 101]", raw);
    return guestIds("guests", raw);
};

const readAuth = (cfg: pulumi.Config): StackSettings["auth"] => {
    const kind = cfg.get("auth") ?? "token";
    if (kind === "token") return { kind, apiToken: cfg.requireSecret("apiToken") };
    if (kind === "password") return { kind, username: cfg.get("username") ?? "root@pam", password: cfg.requireSecret("password") };
    return configError("auth", '"token" (phoenix:apiToken) or "password" (phoenix:username, phoenix:password)', kind);
};

export const readStackSettings = (cfg = new pulumi.Config("phoenix")): StackSettings => {
    const selectAll = cfg.getBoolean("selectAll") ?? false;
    const rawGuests = cfg.getObject<unknown>("guests");
    if (rawGuests === undefined && !selectAll) configError("guests", 'a list of guest IDs (pulumi config set --path "phoenix:guests[0]" 103), or phoenix:selectAll true', undefined);
    const endpoint = cfg.require("endpoint");
    if (!/^https:\/\/[^/]+(:\d+)?\/?$/.test(endpoint)) configError("endpoint", "the API URL without path, e.g. https://pve.lan:8006/", endpoint);
    const sshPrivateKey = cfg.requireSecret("sshPrivateKey");
    let keys: pulumi.Output<string[]> | undefined;
    // The raw text of the key, only to check its shape: the value itself stays a secret Output.
    const keysProblem = () => sshPublicKeysProblem(pulumi.runtime.getConfig(`${cfg.name}:sshPublicKeys`));
    const sshPublicKeys = (): pulumi.Output<string[]> =>
        (keys ??= (cfg.getSecretObject<unknown>("sshPublicKeys") ?? pulumi.secret<unknown>([])).apply((k) => {
            const problem = keysProblem();
            if (problem) throw new pulumi.RunError(`stack config phoenix:sshPublicKeys: ${problem} (${SSH_PUBLIC_KEYS_FIX})`);
            return k as string[];
        }));
    return {
        guests: selectAll ? "all" : parseGuests(rawGuests),
        catalog: cfg.get("catalog") ?? "guests",
        endpoint,
        insecure: cfg.getBoolean("insecure") ?? false,
        auth: readAuth(cfg),
        ...readClusterSettings(cfg),
        sshPrivateKey,
        guestSshPrivateKey: cfg.getSecret("guestSshPrivateKey") ?? sshPrivateKey,
        sshPublicKeys,
        sshPublicKeysProblem: keysProblem,
        secret: (key: string) => cfg.requireSecret(key),
        has: (key: string) => cfg.getSecret(key) !== undefined,
    };
};
