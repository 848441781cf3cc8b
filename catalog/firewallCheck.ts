// Would a guest's firewall let this connection through? Evaluated as Proxmox does for a guest: the firewall off lets
// everything through; otherwise the enabled rules of the direction, in catalog order, first match decides, else the
// direction's policy. Pure: the route check (catalog/routes.ts) asks it about every hop.
//
// What a rule can say that is not evaluated here makes the rule not match (the check then asks for a plain rule):
// aliases and IP sets (+name) as addresses, macros other than those below, source ports (a client's port is
// ephemeral). The peer is an address or a whole subnet ("the LAN"): a rule matches a subnet only when its address
// covers all of it; a rule about part of the subnet is skipped, so "admits the LAN" means a rule admits all of it.
import { IPV4_CIDR_RE, IPV4_RE } from "./net";
import type { FirewallRuleSpec } from "./schema";

export interface FirewallSpec {
    enabled: boolean;
    inputPolicy: "ACCEPT" | "DROP" | "REJECT";
    outputPolicy: "ACCEPT" | "DROP" | "REJECT";
    rules: FirewallRuleSpec[];
}

export interface Connection {
    direction: "in" | "out";
    /** The other end: an IPv4 address, or a subnet in CIDR form. */
    peer: string;
    /** This guest's own address (matched against a rule's dest for "in", its source for "out"). */
    self?: string;
    proto: "tcp";
    port: number;
}

export interface Verdict {
    allowed: boolean;
    /** What decided: "rule 3 (comment)", "input policy DROP", "firewall off". */
    by: string;
}

/** Macros whose protocol and port are fixed (Proxmox's names). */
const MACROS: Record<string, { proto: string; ports: number[] }> = {
    HTTP: { proto: "tcp", ports: [80] },
    HTTPS: { proto: "tcp", ports: [443] },
    Web: { proto: "tcp", ports: [80, 443] },
    SSH: { proto: "tcp", ports: [22] },
};

type Range = [number, number];

const ipNumber = (ip: string): number => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);

/** An address spec (IP, CIDR, a-b range, or a comma list of them) as number ranges; undefined if any part is not one. */
const addressRanges = (spec: string): Range[] | undefined => {
    const out: Range[] = [];
    for (const part of spec.split(",").map((p) => p.trim())) {
        if (IPV4_RE.test(part)) out.push([ipNumber(part), ipNumber(part)]);
        else if (IPV4_CIDR_RE.test(part)) {
            const [ip, prefix] = part.split("/");
            const size = 2 ** (32 - Number(prefix));
            const base = Math.floor(ipNumber(ip) / size) * size;
            out.push([base, base + size - 1]);
        } else {
            const [a, b, ...rest] = part.split("-");
            if (rest.length > 0 || !IPV4_RE.test(a) || b === undefined || !IPV4_RE.test(b)) return undefined;
            out.push([ipNumber(a), ipNumber(b)]);
        }
    }
    return out;
};

/** Whether the rule's address covers the peer entirely (an address, or every address of a subnet). */
const covers = (spec: string | undefined, peer: string): boolean => {
    if (spec === undefined) return true;
    const ranges = addressRanges(spec);
    const [want] = addressRanges(peer) ?? [];
    return ranges !== undefined && want !== undefined && ranges.some(([lo, hi]) => lo <= want[0] && want[1] <= hi);
};

const portMatches = (dport: string | undefined, port: number): boolean =>
    dport === undefined ||
    dport.split(",").some((p) => {
        const [lo, hi] = p.split(":").map(Number);
        return hi === undefined ? port === lo : lo <= port && port <= hi;
    });

const ruleMatches = (r: FirewallRuleSpec, c: Connection): boolean => {
    if (!r.enabled || r.type !== c.direction || r.sport !== undefined) return false;
    const [peerField, selfField] = c.direction === "in" ? [r.source, r.dest] : [r.dest, r.source];
    if (!covers(peerField, c.peer) || (selfField !== undefined && (c.self === undefined || !covers(selfField, c.self)))) return false;
    if (r.macro !== undefined) {
        const m = MACROS[r.macro];
        return m !== undefined && m.proto === c.proto && m.ports.includes(c.port) && r.dport === undefined;
    }
    const proto = r.proto?.toLowerCase();
    return (proto === undefined || proto === c.proto || proto === "6") && portMatches(r.dport, c.port);
};

export const firewallVerdict = (fw: FirewallSpec, c: Connection): Verdict => {
    if (!fw.enabled) return { allowed: true, by: "firewall off" };
    const i = fw.rules.findIndex((r) => ruleMatches(r, c));
    if (i >= 0) {
        const r = fw.rules[i];
        return { allowed: r.action === "ACCEPT", by: `rules[${i}] ${r.action}${r.comment ? ` (${r.comment})` : ""}` };
    }
    const policy = c.direction === "in" ? fw.inputPolicy : fw.outputPolicy;
    return { allowed: policy === "ACCEPT", by: `${c.direction === "in" ? "input" : "output"} policy ${policy}` };
};

/** The smallest rule that allows the connection, in the catalog's flow style, for error messages. */
export const ruleFor = (c: Connection, comment: string): string =>
    `{ type: ${c.direction}, action: ACCEPT, ${c.direction === "in" ? "source" : "dest"}: ${c.peer}, proto: tcp, dport: "${c.port}", comment: ${comment} }`;
