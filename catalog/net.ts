// Addresses, ports and protocols as Proxmox parses them. Each syntax is a regular expression (so the editor JSON Schema
// carries it) plus, where a regular expression cannot say it, a check with the message Proxmox would give.
// Sources: pve-firewall src/PVE/Firewall.pm (parse_address_list, parse_port_name_number_or_range,
// pve_fw_verify_protocol_spec, verify_rule; the `pve-fw-addr-spec` format and the rule properties' maxLength) and
// netbase 6.4 /etc/protocols (Debian 12, the base of Proxmox VE 8), which pve-firewall reads for protocol names.

const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
/** Dotted quad without leading zeros (Net::IP would also take "10.0.0" for 10.0.0.0: ambiguous, so refused here). */
export const IPV4 = `${OCTET}(\\.${OCTET}){3}`;
const H16 = "[0-9A-Fa-f]{1,4}";
const LS32 = `(${H16}:${H16}|${IPV4})`;
/** RFC 4291 text forms (RFC 3986 IPv6address), embedded IPv4 included. */
export const IPV6 = [
    `(${H16}:){6}${LS32}`,
    `::(${H16}:){5}${LS32}`,
    `(${H16})?::(${H16}:){4}${LS32}`,
    `((${H16}:){0,1}${H16})?::(${H16}:){3}${LS32}`,
    `((${H16}:){0,2}${H16})?::(${H16}:){2}${LS32}`,
    `((${H16}:){0,3}${H16})?::${H16}:${LS32}`,
    `((${H16}:){0,4}${H16})?::${LS32}`,
    `((${H16}:){0,5}${H16})?::${H16}`,
    `((${H16}:){0,6}${H16})?::`,
].map((alt) => `(${alt})`).join("|");

const whole = (re: string): RegExp => new RegExp(`^(${re})$`);
export const IPV4_RE = whole(IPV4);
export const IPV6_RE = whole(IPV6);
/** A guest's own address: IPv4 with its prefix length (host bits allowed: it is an address, not a network). */
export const IPV4_CIDR_RE = whole(`${IPV4}/([12]?[0-9]|3[0-2])`);

// --- firewall addresses (pve-fw-addr-spec) -------------------------------------------------------------------------

/** Firewall.pm: $ipset_name_pattern and $ip_alias_pattern (both '[A-Za-z][A-Za-z0-9\-\_]+'). */
const FW_NAME = "[A-Za-z][A-Za-z0-9_-]+";
const FW_IPSET = `\\+(guest/|dc/|sdn/)?${FW_NAME}`;
const FW_ALIAS = `(dc/|guest/)?${FW_NAME}`;
const FW_ADDR = `(${IPV4})(/[0-9]{1,2}|-(${IPV4}))?|(${IPV6})(/[0-9]{1,3}|-(${IPV6}))?`;
/** The syntax of a firewall source or destination: an +ipset, an alias, or a comma list of addresses, CIDRs or one range. */
export const FIREWALL_ADDRESS_RE = whole(`${FW_IPSET}|${FW_ALIAS}|(${FW_ADDR})(,(${FW_ADDR}))*`);
/** Firewall.pm: $max_ipset_name_length (+1 for the "+"), $max_alias_name_length; rule source/dest maxLength. */
const MAX_IPSET_REF = 65;
const MAX_ALIAS = 64;
export const MAX_FIREWALL_ADDRESS = 512;

type Parsed = { version: 4 | 6; value: bigint };

const ipv4Value = (s: string): bigint => s.split(".").reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);

const ipv6Value = (s: string): bigint => {
    let text = s;
    let tail: bigint[] = [];
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (v4) {
        const n = ipv4Value(v4[1]);
        tail = [n >> 16n, n & 0xffffn];
        text = text.slice(0, -v4[1].length);
        if (text.endsWith(":") && !text.endsWith("::")) text = text.slice(0, -1);
    }
    const [head, rest] = text.split("::");
    const groups = (part: string | undefined) => (part ? part.split(":").filter(Boolean).map((h) => BigInt(parseInt(h, 16))) : []);
    const left = groups(head);
    const right = [...groups(rest), ...tail];
    const zeros = rest === undefined ? [] : Array(8 - left.length - right.length).fill(0n);
    return [...left, ...zeros, ...right].reduce((acc, g) => (acc << 16n) | g, 0n);
};

/** An address as Net::IP sees it (version and value), or undefined. Net::IP refuses IPv6 text with more than 7 colons. */
const parseAddress = (s: string): Parsed | undefined => {
    if (IPV4_RE.test(s)) return { version: 4, value: ipv4Value(s) };
    if (IPV6_RE.test(s) && (s.match(/:/g) ?? []).length <= 7) return { version: 6, value: ipv6Value(s) };
    return undefined;
};

/** What Proxmox says about one element of an address list (Net::IP->new in parse_address_list), or undefined if fine. */
const addressElementProblem = (elem: string): { problem?: string; version?: 4 | 6; range?: boolean } => {
    const range = /^([^-/]+)-([^-/]+)$/.exec(elem);
    if (range) {
        const [a, b] = [parseAddress(range[1]), parseAddress(range[2])];
        if (!a || !b || a.version !== b.version) return { problem: `"${elem}" is not a range of two addresses of one IP version` };
        if (a.value > b.value) return { problem: `range "${elem}" runs backwards (begin address greater than end address)` };
        return { version: a.version, range: true };
    }
    const [ip, len, ...more] = elem.split("/");
    const addr = parseAddress(ip);
    if (!addr || more.length > 0) return { problem: `"${elem}" is not an IPv4/IPv6 address, CIDR or range` };
    if (len === undefined) return { version: addr.version };
    const bits = addr.version === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(len) || Number(len) > bits) return { problem: `"${elem}" has a prefix length above ${bits}` };
    const hostBits = BigInt(bits - Number(len));
    if (hostBits > 0n && (addr.value & ((1n << hostBits) - 1n)) !== 0n) {
        // Net::IP: "Invalid prefix": the bits after the prefix must be zero.
        const network = (addr.value >> hostBits) << hostBits;
        const shown = addr.version === 4 ? [24n, 16n, 8n, 0n].map((s) => String((network >> s) & 255n)).join(".") : undefined;
        return { problem: `"${elem}" has host bits set after the /${len} prefix${shown ? ` (the network is ${shown}/${len})` : ""}; Proxmox refuses it` };
    }
    return { version: addr.version };
};

/**
 * Problems Proxmox would raise for a firewall source or destination (parse_address_list), or undefined. The syntax
 * itself is FIREWALL_ADDRESS_RE; this adds lengths, prefix bits, range order, one IP version, and a range only alone.
 */
export const firewallAddressProblem = (s: string): string | undefined => {
    if (s.length > MAX_FIREWALL_ADDRESS) return `longer than ${MAX_FIREWALL_ADDRESS} characters`;
    if (s.startsWith("+")) return s.length > MAX_IPSET_REF ? `ipset name longer than ${MAX_IPSET_REF - 1} characters` : undefined;
    if (new RegExp(`^${FW_ALIAS}$`).test(s)) return s.length > MAX_ALIAS ? `alias name longer than ${MAX_ALIAS} characters` : undefined;
    const elements = s.split(",");
    const versions = new Set<number>();
    let ranges = 0;
    for (const elem of elements) {
        const r = addressElementProblem(elem);
        if (r.problem) return r.problem;
        versions.add(r.version!);
        if (r.range) ranges++;
    }
    if (versions.size > 1) return "mixes IPv4 and IPv6 addresses in one list";
    if (ranges > 0 && elements.length > 1) return "a range cannot be part of a list";
    return undefined;
};

/** IP version of a firewall address (undefined for aliases and ipsets, whose version Phoenix cannot know). */
export const firewallAddressVersion = (s: string): 4 | 6 | undefined =>
    s.startsWith("+") || new RegExp(`^${FW_ALIAS}$`).test(s) ? undefined : parseAddress(s.split(",")[0].split(/[-/]/)[0])?.version;

// --- ports (pve-fw-dport-spec / pve-fw-sport-spec) -----------------------------------------------------------------

/** 1..65535 (Proxmox itself stops at 65535; port 0 matches nothing). */
export const PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";
const PORT_ITEM = `${PORT}(:${PORT})?`;
export const PORT_LIST_RE = whole(`${PORT_ITEM}(,${PORT_ITEM})*`);
/** parse_port_name_number_or_range: "too many entries in port list (> 15 numbers)"; a range counts two. */
export const MAX_PORT_NUMBERS = 15;

export const portListProblem = (s: string): string | undefined => {
    let count = 0;
    for (const item of s.split(",")) {
        const [a, b] = item.split(":").map(Number);
        count += b === undefined ? 1 : 2;
        if (b !== undefined && a > b) return `backwards range "${item}"; did you mean "${b}:${a}"?`;
    }
    return count > MAX_PORT_NUMBERS ? `too many entries: ${count} port numbers (a range counts two), Proxmox allows ${MAX_PORT_NUMBERS}` : undefined;
};

// --- protocols (pve-fw-protocol-spec) ------------------------------------------------------------------------------

/**
 * /etc/protocols of netbase 6.4 (name, number), as pve-firewall's parse_protocol_file reads it: the first column and
 * the number; aliases are not looked up. mptcp (262) is left out: it is no IP protocol number (iptables takes 0..255).
 */
const ETC_PROTOCOLS: [string, number][] = [
    ["ip", 0], ["hopopt", 0], ["icmp", 1], ["igmp", 2], ["ggp", 3], ["ipencap", 4], ["st", 5], ["tcp", 6], ["egp", 8],
    ["igp", 9], ["pup", 12], ["udp", 17], ["hmp", 20], ["xns-idp", 22], ["rdp", 27], ["iso-tp4", 29], ["dccp", 33],
    ["xtp", 36], ["ddp", 37], ["idpr-cmtp", 38], ["ipv6", 41], ["ipv6-route", 43], ["ipv6-frag", 44], ["idrp", 45],
    ["rsvp", 46], ["gre", 47], ["esp", 50], ["ah", 51], ["skip", 57], ["ipv6-icmp", 58], ["ipv6-nonxt", 59],
    ["ipv6-opts", 60], ["rspf", 73], ["vmtp", 81], ["eigrp", 88], ["ospf", 89], ["ax.25", 93], ["ipip", 94],
    ["etherip", 97], ["encap", 98], ["pim", 103], ["ipcomp", 108], ["vrrp", 112], ["l2tp", 115], ["isis", 124],
    ["sctp", 132], ["fc", 133], ["mobility-header", 135], ["udplite", 136], ["mpls-in-ip", 137], ["manet", 138],
    ["hip", 139], ["shim6", 140], ["wesp", 141], ["rohc", 142], ["ethernet", 143],
];
/** Names and numbers Proxmox accepts for `proto`; get_etc_protocols adds "icmpv6". */
export const PROTOCOLS: string[] = [
    ...ETC_PROTOCOLS.map(([name]) => name),
    "icmpv6",
    ...[...new Set(ETC_PROTOCOLS.map(([, n]) => String(n)))],
];
/** Firewall.pm $PROTOCOLS_WITH_PORTS: only these take dport/sport. */
export const PROTOCOLS_WITH_PORTS = new Set(["tcp", "6", "udp", "17", "udplite", "136", "dccp", "33", "sctp", "132"]);
/** Protocols that pin a rule to one IP version (verify_rule's set_ip_version). */
export const PROTOCOL_VERSION: Record<string, 4 | 6> = { icmp: 4, icmpv6: 6, "ipv6-icmp": 6 };

/** Firewall.pm $pve_fw_macros, by their preferred names (Proxmox rewrites other spellings to these: a perpetual diff). */
export const FIREWALL_MACROS = [
    "Amanda", "Auth", "BGP", "BitTorrent", "BitTorrent32", "Ceph", "CVS", "Citrix", "DAAP", "DCC", "DHCPfwd", "DNS",
    "Distcc", "FTP", "Finger", "GNUnet", "GRE", "Git", "HKP", "HTTP", "HTTPS", "ICPV2", "ICQ", "IMAP", "IMAPS", "IPIP",
    "IPsec", "IPsecah", "IPsecnat", "IRC", "Jetdirect", "L2TP", "LDAP", "LDAPS", "MSNP", "MSSQL", "Mail", "MDNS", "Munin",
    "MySQL", "NNTP", "NNTPS", "NTP", "OSPF", "OpenVPN", "PCA", "PMG", "POP3", "POP3S", "PPtP", "Ping", "PostgreSQL",
    "Printer", "RDP", "RIP", "RNDC", "Razor", "Rdate", "Rsync", "SANE", "SMB", "SMBswat", "SMTP", "SMTPS", "SNMP",
    "SPAMD", "SSH", "SVN", "SixXS", "SPICEproxy", "Squid", "Submission", "Syslog", "TFTP", "Telnet", "Telnets", "Time",
    "Trcrt", "VNC", "VNCL", "Web", "Webcache", "Webmin", "Whois",
] as const;
