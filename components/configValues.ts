// The forms of the stack config values that reach a node: node names as Proxmox parses them, addresses, ports, SSH
// users and host keys. Each check returns what was expected, or undefined; stackConfig.ts and clusterConfig.ts say
// which key it was. A node name becomes part of API paths (/nodes/<node>/lxc) and an address or user part of an SSH
// connection, so a value that is none of these is refused before anything is registered.
import { DNS_NAME_RE, NodeName, UserName } from "../catalog/fields";
import { IPV4_RE, IPV6_RE } from "../catalog/net";

/** pve-common JSONSchema.pm pve_verify_node_name (format 'pve-node'): letters, digits and inner hyphens. */
export const nodeNameProblem = (v: unknown): string | undefined =>
    typeof v === "string" && NodeName.safeParse(v).success ? undefined : "a Proxmox node name (letters, digits and inner hyphens, at most 63 characters)";

/** An IPv4 or IPv6 address or a DNS name, as pve-common's 'address' format (a DNS name's last label not all digits). */
export const addressProblem = (v: unknown): string | undefined =>
    typeof v === "string" && (IPV4_RE.test(v) || IPV6_RE.test(v) || DNS_NAME_RE.test(v)) ? undefined : "an IP address or a DNS name (letters, digits, inner hyphens and dots)";

/** `pulumi config set --path` stores integers as numbers; a hand-written stack file may quote them. */
export const portOf = (v: unknown): number | undefined => {
    const n = typeof v === "string" && /^\d{1,5}$/.test(v) ? Number(v) : v;
    return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
};
export const PORT_EXPECTED = "a port 1..65535";

export const sshUserProblem = (v: unknown): string | undefined =>
    typeof v === "string" && UserName.safeParse(v).success ? undefined : "an SSH user name (lower-case letters, digits, _ and -, at most 32 characters)";

/** Key types golang.org/x/crypto/ssh parses (pulumi-command reads a host key with ssh.ParseAuthorizedKey). */
const SSH_KEY_TYPES = new Set([
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-dss",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
]);

/**
 * One public key line, `<type> <base64> [comment]`, as in /etc/ssh/ssh_host_ed25519_key.pub: the base64 part is the
 * key blob, whose first field names the same type and whose fields fill it exactly (an ed25519 key: 32 bytes), as
 * ssh.ParseAuthorizedKey would find when the first connection is made.
 */
export const sshPublicKeyProblem = (v: unknown): string | undefined => {
    const expected = `one public key line "<type> <base64> [comment]", such as the node's /etc/ssh/ssh_host_ed25519_key.pub`;
    if (typeof v !== "string") return expected;
    const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})( [^\x00-\x1f\x7f]*)?$/.exec(v.trim());
    if (!m) return expected;
    if (!SSH_KEY_TYPES.has(m[1])) return `${expected}; key types: ${[...SSH_KEY_TYPES].join(", ")}`;
    const fields = sshWireFields(Buffer.from(m[2], "base64"));
    const wellFormed = fields !== undefined && fields[0]?.toString("latin1") === m[1] && (m[1] !== "ssh-ed25519" || (fields.length === 2 && fields[1].length === 32));
    return wellFormed ? undefined : `${expected}; its base64 part is not a ${m[1]} key (copied incompletely?)`;
};

/**
 * The fields of an SSH wire-format key blob (RFC 4253 6.6: the type name, then the key's own fields, each a uint32
 * length and that many bytes), or undefined when they do not fill the blob exactly: a key cut short or run on.
 */
const sshWireFields = (blob: Buffer): Buffer[] | undefined => {
    const fields: Buffer[] = [];
    for (let at = 0; at < blob.length;) {
        if (at + 4 > blob.length) return undefined;
        const length = blob.readUInt32BE(at);
        if (at + 4 + length > blob.length) return undefined;
        fields.push(blob.subarray(at + 4, at + 4 + length));
        at += 4 + length;
    }
    return fields.length >= 2 ? fields : undefined;
};

/** phoenix:endpoint: https://<address>[:port][/], no path (the provider adds /api2/json). */
export const endpointProblem = (v: unknown): string | undefined => {
    const expected = "the API URL without path, e.g. https://pve.lan:8006/";
    const m = typeof v === "string" ? /^https:\/\/(\[([^\]]*)\]|[^/:[\]]+)(?::([^/]*))?\/?$/.exec(v) : null;
    if (!m) return expected;
    const hostOk = m[2] !== undefined ? IPV6_RE.test(m[2]) : addressProblem(m[1]) === undefined;
    if (!hostOk) return `${expected}, whose host is an IP address or a DNS name`;
    if (m[3] !== undefined && portOf(m[3]) === undefined) return `${expected}, with ${PORT_EXPECTED}`;
    return undefined;
};
