// Every stack config key the program reads, in one table. Pulumi.yaml's declarations, the offline plan's secret
// placeholders, README's configuration table and the messages for an unset key all follow it (tests hold Pulumi.yaml
// and README to it). Keys the catalog names (a step's `secrets:`, `cloudInit.passwordSecret`) are not in it: they are
// secrets the selected guests need, checked by configCheck.ts.
//
// What goes into Pulumi.yaml follows from how the Pulumi CLI treats a declaration (pulumi/pulumi 1b59498,
// pkg/workspace/config.go): mergeConfig (lines 303-355) fails a stack that lacks a declared key with neither default
// nor value ("Stack 'dev' is missing configuration value 'k'", line 60), and validateStackConfigValue (lines 126-134)
// fails a declared secret whose value, a plain default included, is not encrypted ("... must be encrypted as it's
// secret"). So Pulumi.yaml declares the keys every stack must set (no default) and the optional non-secret keys with
// their defaults; optional secrets and keys only some stacks need are not declared (nothing in mergeConfig looks at
// stack keys the project does not declare), and the program checks them, with the condition and the command that
// sets them. plan/stackFile.ts cliConfigProblems emulates these rules; test/config.spec.ts holds every stack file to them.

export type ConfigType = "string" | "integer" | "boolean" | "integer[]" | "string[]" | "object";

/** When a stack must set a key: every stack, only under a condition (said as text), or never (it is optional). */
export type Requirement = "always" | "optional" | { when: string };

export interface ConfigKeySpec {
    key: string;
    type: ConfigType;
    secret: boolean;
    /** The value an unset key has (declared in Pulumi.yaml, so the CLI hands it to the program). */
    default?: string | number | boolean | readonly number[];
    /** What an unset optional key without a default means, for README. */
    unset?: string;
    required: Requirement;
    /** How to set it (`pulumi config set ...`); default: derived from the type and whether it is secret. */
    fix?: string;
    description: string;
}

/** Defaults the program applies; the table (and so Pulumi.yaml) declares the same. */
export const CONFIG_DEFAULTS = {
    selectAll: false,
    catalog: "guests",
    insecure: false,
    auth: "token",
    username: "root@pam",
    sshPort: 22,
    sshUser: "root",
    allowReplace: [] as readonly number[],
    haAffinity: "rules",
} as const;

export const CONFIG_KEYS: readonly ConfigKeySpec[] = [
    {
        key: "guests", type: "integer[]", secret: false, required: { when: "phoenix:selectAll is not true" },
        fix: `pulumi config set --path 'guests[0]' 103`,
        description: "Guest IDs this stack manages; their dependencies and clone sources come along. The selection is desired state: a guest removed from it is destroyed.",
    },
    { key: "selectAll", type: "boolean", secret: false, default: CONFIG_DEFAULTS.selectAll, required: "optional", description: "Manage every guest in the catalog (phoenix:guests is then ignored)." },
    { key: "catalog", type: "string", secret: false, default: CONFIG_DEFAULTS.catalog, required: "optional", description: "Folder of the guest catalog (one YAML file per guest plus defaults.yaml), relative to the project." },
    {
        key: "node", type: "string", secret: false, required: { when: "phoenix:nodes is not set, or lists more than one node" },
        description: "Proxmox node for guests that name none (with phoenix:nodes: one of them). A Proxmox node name: letters, digits and inner hyphens.",
    },
    {
        key: "nodes", type: "object", secret: false, required: "optional", unset: "a one-node stack (phoenix:node, phoenix:nodeAddress)",
        fix: `pulumi config set --path 'nodes.pve2.address' 10.0.0.14`,
        description: "A cluster: each node's SSH access, { NODE: { address, port?, user?, hostKey? } }; port and user default to phoenix:sshPort and phoenix:sshUser. Replaces phoenix:nodeAddress and phoenix:nodeHostKey.",
    },
    { key: "endpoint", type: "string", secret: false, required: "always", description: "Proxmox API URL without path, e.g. https://pve.lan:8006/." },
    { key: "insecure", type: "boolean", secret: false, default: CONFIG_DEFAULTS.insecure, required: "optional", description: "Accept a self-signed API certificate." },
    {
        key: "auth", type: "string", secret: false, default: CONFIG_DEFAULTS.auth, required: "optional",
        description: "How the provider logs in: token (phoenix:apiToken) or password (phoenix:username and phoenix:password). Bind mounts need password login as root@pam.",
    },
    { key: "apiToken", type: "string", secret: true, required: { when: "phoenix:auth is token" }, description: "Proxmox API token, user@realm!tokenid=uuid." },
    { key: "username", type: "string", secret: false, default: CONFIG_DEFAULTS.username, required: "optional", description: "Proxmox user (with phoenix:auth password)." },
    { key: "password", type: "string", secret: true, required: { when: "phoenix:auth is password" }, description: "Password of phoenix:username." },
    {
        key: "nodeAddress", type: "string", secret: false, required: { when: "phoenix:nodes is not set (a one-node stack)" },
        description: "One-node stack: SSH address of the node (IP address or DNS name), for pct/qm operations, snippets and id maps.",
    },
    { key: "sshPort", type: "integer", secret: false, default: CONFIG_DEFAULTS.sshPort, required: "optional", description: "SSH port of the node, 1..65535 (with phoenix:nodes, of every node that gives none)." },
    {
        key: "sshUser", type: "string", secret: false, default: CONFIG_DEFAULTS.sshUser, required: "optional",
        description: "SSH user on the node (with phoenix:nodes, of every node that gives none, and the provider's on all nodes); pct and qm need root.",
    },
    {
        key: "nodeHostKey", type: "string", secret: false, required: "optional", unset: "the host key is not checked",
        description: "One-node stack: expected SSH host key of the node, a public key line such as the node's /etc/ssh/ssh_host_ed25519_key.pub (recommended).",
    },
    {
        key: "allowReplace", type: "integer[]", secret: false, default: CONFIG_DEFAULTS.allowReplace, required: "optional",
        fix: `pulumi config set --path 'allowReplace[0]' 101`,
        description: "Guest IDs whose replacement or removal the next pulumi up may carry out. Containers and VMs are protected (catalog protect, default true): a change that replaces one (storage, mount points, unprivileged, a container moved to another node: re-created there, its data lost) or its removal is refused until its ID is listed here. Remove it again once done.",
    },
    {
        key: "haAffinity", type: "string", secret: false, default: CONFIG_DEFAULTS.haAffinity, required: "optional",
        description: "How a guest's ha.nodes reach Proxmox: rules (node-affinity HA rules, Proxmox VE 9) or groups (HA groups, Proxmox VE 8).",
    },
    {
        key: "sshPrivateKey", type: "string", secret: true, required: "always", fix: "pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519",
        description: "Private key for SSH to the nodes (and to VMs unless phoenix:guestSshPrivateKey is set).",
    },
    { key: "guestSshPrivateKey", type: "string", secret: true, required: "optional", unset: "phoenix:sshPrivateKey", description: "Private key for SSH into VMs." },
    {
        key: "sshPublicKeys", type: "string[]", secret: true, required: { when: "the selection has VMs" },
        fix: `pulumi config set --secret --path 'sshPublicKeys[0]' "$(cat ~/.ssh/id_ed25519.pub)"`,
        description: "Public keys installed for the VMs' cloud-init user, one line each.",
    },
];

const byKey = new Map(CONFIG_KEYS.map((k) => [k.key, k]));

export const configKey = (key: string): ConfigKeySpec => {
    const spec = byKey.get(key);
    // Every key the program reads is in the table (a test holds the readers to it): reaching this is a program bug.
    if (!spec) throw new Error(`stack config key ${key} is not in components/configKeys.ts`);
    return spec;
};

/** The command that sets a key, as messages and README show it. */
export const fixFor = (spec: ConfigKeySpec): string =>
    spec.fix ?? (spec.type.endsWith("[]")
        ? `pulumi config set${spec.secret ? " --secret" : ""} --path '${spec.key}[0]' <value>`
        : `pulumi config set${spec.secret ? " --secret" : ""} ${spec.key} <value>`);

/** The message for a key the stack must set and does not. */
export const unsetKeyProblem = (key: string): string => {
    const spec = configKey(key);
    const when = spec.required === "always" ? "every stack needs it" : spec.required === "optional" ? "" : `required when ${spec.required.when}`;
    return `stack config phoenix:${key} is not set; ${when}${when ? "; " : ""}fix: ${fixFor(spec)}`;
};

/**
 * Declared in Pulumi.yaml: what every stack must set (no default), and optional non-secret keys with their default.
 * A secret never has a default there (the CLI refuses a plain value for a declared secret).
 */
export const declaredInProject = (spec: ConfigKeySpec): boolean => spec.required === "always" || (!spec.secret && spec.default !== undefined);

/** Pulumi.yaml's declaration of a key, as the project file spells it. */
export const projectDeclaration = (spec: ConfigKeySpec): Record<string, unknown> => {
    const [type, items] = spec.type.endsWith("[]") ? ["array", spec.type.slice(0, -2)] : [spec.type, undefined];
    return {
        type,
        ...(items ? { items: { type: items } } : {}),
        ...(spec.secret ? { secret: true } : {}),
        ...(spec.default !== undefined ? { default: spec.default } : {}),
        description: spec.description,
    };
};

const cell = (s: string): string => s.replace(/\|/g, "\\|");

/**
 * README's configuration table, rendered from the table above (a test holds README to it): one row per key, with
 * whether Pulumi.yaml declares it, so a reader sees why the CLI asks for some keys and the program for the others.
 */
export const configTable = (): string => {
    const rows = CONFIG_KEYS.map((spec) => {
        const value = spec.default !== undefined ? `\`${JSON.stringify(spec.default)}\`` : spec.unset ? `unset: ${spec.unset}` : "";
        const required = spec.required === "always" ? "every stack" : spec.required === "optional" ? "no" : `when ${spec.required.when}`;
        const declared = declaredInProject(spec) ? "yes" : "no";
        return `| \`phoenix:${spec.key}\` | ${spec.type}${spec.secret ? ", secret" : ""} | ${cell(value)} | ${cell(required)} | ${declared} | ${cell(spec.description)} |`;
    });
    return [
        "| Key | Type | Default | Required | In Pulumi.yaml | Meaning |",
        "|---|---|---|---|---|---|",
        ...rows,
    ].join("\n");
};
