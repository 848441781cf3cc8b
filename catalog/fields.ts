// Field types of the catalog with the bounds and forms Proxmox (or the guest) accepts. Each is a zod schema whose
// regular expressions and bounds also go into the editor JSON Schema (guests/schema.json); what a regular expression
// cannot say is a refinement with the same message. Every string type keeps out control characters, so no catalog
// value can carry a line break into a config line, an fstab entry, a unit or a firewall file.
import { z } from "zod";
import { IPV4_CIDR_RE, IPV4_RE } from "./net";

/** Control characters as glibc's [:cntrl:] counts them in a UTF-8 locale (C0, DEL, C1, U+2028/9). */
const CTRL = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029";

/** A whole number in a range, with one message that says which. */
export const int = (min: number, max: number, what: string) => {
    const error = `expected ${what}, a whole number ${min}..${max}`;
    // abort: a value out of range is reported once, and refinements of the object around it do not run on it
    return z.number({ error }).int({ error, abort: true }).min(min, { error, abort: true }).max(max, { error, abort: true });
};

/** One line of text: no control characters, no leading or trailing blanks (Proxmox trims them: a perpetual diff). */
export const line = (max: number, what: string) =>
    z.string().max(max, { error: `expected ${what}, at most ${max} characters`, abort: true })
        .regex(new RegExp(`^[^${CTRL}\\s]([^${CTRL}]*[^${CTRL}\\s])?$`), { error: `expected ${what}: one line without control characters or surrounding blanks` });

/** Text that may span lines (tabs and newlines), nothing else below 0x20. */
export const textBlock = (max: number, what: string) =>
    z.string().max(max, { error: `expected ${what}, at most ${max} characters`, abort: true })
        .regex(/^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]*$/, { error: `expected ${what}: text without control characters other than tab and newline` });

/**
 * An absolute, canonical path: no empty, "." or ".." segment, no trailing "/", and only letters, digits and _.+@- in a
 * segment. Proxmox reads mount point options comma-separated (`mp0: <host path>,mp=<path>`), fstab and systemd split on
 * blanks, and systemd expands "%": so none of those can appear. The same expression is features/lib/common.sh's
 * `absolute-path` format (a test holds them equal), so the scripts accept exactly what the catalog does.
 */
export const ABSOLUTE_PATH_RE = /^(\/([A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*|\.[A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*|\.\.[A-Za-z0-9_.+@-]+))+$/;
export const absolutePath = (what: string) =>
    z.string().max(4096, { error: `expected ${what}, at most 4096 characters`, abort: true })
        .regex(ABSOLUTE_PATH_RE, { error: `expected ${what}: an absolute path such as /mnt/data, without . or .. segments, //, a trailing / or characters other than letters, digits and _.+@-` });

const LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
export const Hostname = z
    .string()
    .regex(new RegExp(`^(?=.{1,253}$)${LABEL}(\\.${LABEL})*$`), {
        error: "expected a hostname: letters, digits and inner hyphens, labels of at most 63 characters",
    });
/** A DNS name to connect to: its last label is not all digits (RFC 1123 2.1), so 10.0.0.999 is no name. */
export const DNS_NAME_RE = new RegExp(`^(?=.{1,253}$)(${LABEL}\\.)*(?=[0-9]*[A-Za-z-])${LABEL}$`);
const DnsName = z
    .string()
    .regex(DNS_NAME_RE, {
        error: "expected an IPv4 address or a DNS name (whose last label is not all digits)",
    });
export const Ipv4 = z.string().regex(IPV4_RE, { error: "expected an IPv4 address such as 10.0.0.1" });
export const Ipv4Cidr = z.string().regex(IPV4_CIDR_RE, { error: "expected an IPv4 address with prefix length, such as 10.0.0.10/24" });
export const HostAddress = z.union([Ipv4, DnsName], { error: "expected an IPv4 address or a DNS name (whose last label is not all digits)" });

/** pve-common parse_id ('pve-storage-id'). */
export const StorageId = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]$/, {
    error: "expected a Proxmox storage ID: a letter, then letters, digits and _.-, ending in a letter or digit",
});
/** pve-common pve_verify_node_name (a host name label). */
export const NodeName = z.string().max(63, { error: "expected a node name, at most 63 characters" })
    .regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/, { error: "expected a Proxmox node name: letters, digits and inner hyphens" });
/** pve-common 'pve-bridge-id', within Linux's 15-character interface names. */
export const BridgeName = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, { error: "expected a bridge name such as vmbr0 (at most 15 letters, digits, _.-)" });
/** pve-common $PVE_TAG_RE, lower case (Proxmox keeps tags sorted; case would make them sort apart). */
export const Tag = z.string().max(64, { error: "expected a tag, at most 64 characters" })
    .regex(/^[a-z0-9_][a-z0-9_+.-]*$/, { error: "expected a tag: lower-case letters, digits and _+.-, not starting with + . or -" });
/** A Linux user name (useradd's default NAME_REGEX, 32 characters); the `user-name` format of the scripts. */
export const UserName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: "expected a user name: lower-case letters, digits, _ and -, at most 32 characters" });
export const ConfigKey = z.string().max(128, { error: "expected a stack config key, at most 128 characters" })
    .regex(/^[a-z][A-Za-z0-9]*$/, { error: "expected a stack config key in camelCase, e.g. stepCaPassword" });
export const EnvName = z.string().max(64, { error: "expected an environment name, at most 64 characters" })
    .regex(/^[A-Z][A-Z0-9_]*$/, { error: "expected an UPPER_SNAKE environment name" });
export const ScriptName = z.string().max(64, { error: "expected a script name, at most 64 characters" })
    .regex(/^[a-z][a-z0-9_]*$/, { error: "expected a script name such as base_setup" });
export const ParamName = z.string().max(64, { error: "expected a parameter name, at most 64 characters" })
    .regex(/^[a-z][A-Za-z0-9]*$/, { error: "expected a camelCase parameter name" });

/** A download URL: http(s) only (Proxmox's download-url), no blanks, quotes or control characters. */
export const DownloadUrl = z.string().max(2048, { error: "expected a URL, at most 2048 characters" })
    .regex(/^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(\/[^\s\x00-\x1f\x7f-\x9f"'<>\\^`{|}]*)?$/, {
        error: "expected an http:// or https:// URL without blanks or quotes",
    });
export const ChecksumAlgorithm = z.enum(["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]);
const CHECKSUM_HEX: Record<z.output<typeof ChecksumAlgorithm>, number> = { md5: 32, sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128 };
export const Checksum = z.string().regex(/^[0-9A-Fa-f]{32,128}$/, { error: "expected a hex digest" });

/** A checksum and its algorithm come together, and the digest has the algorithm's length. */
export const checkChecksum = (v: { checksum?: string; checksumAlgorithm?: z.output<typeof ChecksumAlgorithm> }, ctx: z.RefinementCtx): void => {
    if (v.checksum !== undefined && v.checksumAlgorithm === undefined) ctx.addIssue({ code: "custom", path: ["checksumAlgorithm"], message: "required with checksum (md5, sha1, sha224, sha256, sha384 or sha512)" });
    else if (v.checksum === undefined && v.checksumAlgorithm !== undefined) ctx.addIssue({ code: "custom", path: ["checksum"], message: `required with checksumAlgorithm ${v.checksumAlgorithm}` });
    else if (v.checksum !== undefined && v.checksumAlgorithm !== undefined && v.checksum.length !== CHECKSUM_HEX[v.checksumAlgorithm]) {
        ctx.addIssue({ code: "custom", path: ["checksum"], message: `expected ${CHECKSUM_HEX[v.checksumAlgorithm]} hex digits for ${v.checksumAlgorithm}` });
    }
};
