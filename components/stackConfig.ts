// Everything the program reads from stack config, read in one place and validated before any resource exists. The
// keys, their types, defaults and when each is required are one table (configKeys.ts); secrets stay Outputs end to
// end, read only where the stack needs them.
import * as pulumi from "@pulumi/pulumi";
import { type ClusterSettings, readClusterSettings } from "./clusterConfig";
import { CONFIG_DEFAULTS, configKey, fixFor, unsetKeyProblem } from "./configKeys";
import { endpointProblem } from "./configValues";

/** Nodes and their SSH access, allowReplace and the HA affinity API: see clusterConfig.ts. */
export interface StackSettings extends ClusterSettings {
    /** Requested guest IDs, or "all". */
    guests: number[] | "all";
    catalog: string;
    endpoint: string;
    insecure: boolean;
    /**
     * How the provider logs in: an API token, or user and password (bind mounts need root@pam, which tokens never are).
     * The secret is read on first use: configCheck.ts reports it unset, with the other keys the stack lacks.
     */
    auth: { kind: "token"; apiToken: pulumi.Output<string> } | { kind: "password"; username: string; password: pulumi.Output<string> };
    /** Read on first use, as the login secret. */
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

export const SSH_PUBLIC_KEYS_FIX = fixFor(configKey("sshPublicKeys"));

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

export const configError = (key: string, expected: string, got: unknown, shown = JSON.stringify(got)): never => {
    throw new pulumi.RunError(`stack config phoenix:${key}: expected ${expected}, received ${shown}`);
};

/** What an error says it received instead of a value that may hold a secret (said why, never shown). */
export const notShown = (got: unknown, why: string): string =>
    `${typeof got === "string" ? `a text of ${got.length} characters` : `a ${Array.isArray(got) ? "list" : typeof got}`} (not shown: ${why})`;

/** Guest IDs from a config list (integers, or digit strings as `pulumi config set --path` may store them). */
export const guestIds = (key: string, raw: unknown[]): number[] =>
    raw.map((v) => (typeof v === "number" && Number.isInteger(v) ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : configError(key, "guest IDs (integers)", v)));

const parseGuests = (raw: unknown): number[] => {
    if (!Array.isArray(raw) || raw.length === 0) return configError("guests", "a non-empty list of guest IDs, e.g. [103, 101]", raw);
    return guestIds("guests", raw);
};

/** A key the stack must set here: its value, or the message that says when it is required and how to set it. */
export const requireKey = (cfg: pulumi.Config, key: string): string => {
    const v = cfg.get(key);
    if (v === undefined) throw new pulumi.RunError(unsetKeyProblem(key));
    return v;
};

/** Read on first use, once: a secret is only read where the stack needs it (configCheck.ts checks it is set first). */
const once = <T>(read: () => T): (() => T) => {
    let value: T | undefined;
    return () => (value ??= read());
};

const readAuth = (cfg: pulumi.Config): StackSettings["auth"] => {
    const kind = cfg.get("auth") ?? CONFIG_DEFAULTS.auth;
    if (kind === "token") {
        const apiToken = once(() => cfg.requireSecret("apiToken"));
        return { kind, get apiToken() { return apiToken(); } };
    }
    if (kind === "password") {
        const password = once(() => cfg.requireSecret("password"));
        return { kind, username: cfg.get("username") ?? CONFIG_DEFAULTS.username, get password() { return password(); } };
    }
    return configError("auth", '"token" (phoenix:apiToken) or "password" (phoenix:username, phoenix:password)', kind);
};

export const readStackSettings = (cfg = new pulumi.Config("phoenix")): StackSettings => {
    const selectAll = cfg.getBoolean("selectAll") ?? CONFIG_DEFAULTS.selectAll;
    const rawGuests = cfg.getObject<unknown>("guests");
    if (rawGuests === undefined && !selectAll) throw new pulumi.RunError(unsetKeyProblem("guests"));
    const endpoint = requireKey(cfg, "endpoint");
    const wrongEndpoint = endpointProblem(endpoint);
    // An address with user information (https://root@pam:pw@pve...) may carry a password: it is not echoed.
    if (wrongEndpoint) configError("endpoint", wrongEndpoint, endpoint, endpoint.includes("@") ? notShown(endpoint, "it has user information, which may hold a password; the login goes in phoenix:username and phoenix:password, or phoenix:apiToken") : undefined);
    const sshPrivateKey = once(() => cfg.requireSecret("sshPrivateKey"));
    const guestSshPrivateKey = once(() => cfg.getSecret("guestSshPrivateKey") ?? sshPrivateKey());
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
        catalog: cfg.get("catalog") ?? CONFIG_DEFAULTS.catalog,
        endpoint,
        insecure: cfg.getBoolean("insecure") ?? CONFIG_DEFAULTS.insecure,
        auth: readAuth(cfg),
        ...readClusterSettings(cfg),
        get sshPrivateKey() { return sshPrivateKey(); },
        get guestSshPrivateKey() { return guestSshPrivateKey(); },
        sshPublicKeys,
        sshPublicKeysProblem: keysProblem,
        secret: (key: string) => cfg.requireSecret(key),
        has: (key: string) => cfg.getSecret(key) !== undefined,
    };
};
