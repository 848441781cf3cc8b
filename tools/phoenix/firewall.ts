// Guest firewall: rules in file order with `port` renamed `dport`; a rule matching the same traffic as an earlier one
// (they differ at most in their comment) is removed, as the catalog rejects it.
import { type Note, type Obj, compact, note } from "./model";
import { listOf } from "./common";
import { isObj, str } from "./source";

const RULE_KEYS = ["type", "action", "source", "dest", "proto", "port", "comment"];

const ruleSummary = (r: Obj): string =>
    [r.type, r.action, r.proto, r.source && `from ${r.source}`, r.dest && `to ${r.dest}`, r.dport && `port ${r.dport}`].filter(Boolean).join(" ");

export const mapFirewall = (raw: unknown, kind: "lxc" | "vm", notes: Note[]): Obj | undefined => {
    if (raw === undefined) {
        notes.push(note("added", "firewall", "none in the original (the guest firewall was off); the catalog default applies: enabled, input policy DROP, no rules. Add rules for the services this guest offers"));
        return undefined;
    }
    if (!isObj(raw)) {
        notes.push(note("dropped", "firewall", "not an object; ignored"));
        return undefined;
    }
    const enabled = raw.enabled !== false;
    if (kind === "lxc" && enabled) {
        notes.push(note("changed", "firewall.enabled",
            "the original never set the container firewall's options to enabled, so its rules were inert; now enabled with input policy DROP: traffic the rules do not allow is dropped"));
    }
    if (!enabled) notes.push(note("changed", "firewall.enabled", "kept disabled as in the original; the policy pack (guest-firewall-default-deny) requires it enabled"));
    const rules: Obj[] = [];
    const seen = new Map<string, { index: number; rule: Obj }>();
    let renamedPort = false;
    listOf(raw, "rules", notes, "firewall.rules").forEach((r: unknown, i: number) => {
        const key = `firewall.rules[${i}]`;
        if (!isObj(r)) {
            notes.push(note("dropped", key, "not an object"));
            return;
        }
        for (const k of Object.keys(r).filter((k) => !RULE_KEYS.includes(k))) notes.push(note("dropped", `${key}.${k}`, "not a rule key the original applied"));
        if (r.port !== undefined) renamedPort = true;
        const rule = compact({
            type: str(r.type)?.toLowerCase(),
            action: str(r.action)?.toUpperCase(),
            source: str(r.source),
            dest: str(r.dest),
            proto: str(r.proto)?.toLowerCase(),
            dport: r.port === undefined ? undefined : String(r.port).replace(/\s+/g, ""),
            comment: str(r.comment),
        });
        const { comment, ...effect } = rule;
        const identity = JSON.stringify(effect, Object.keys(effect).sort());
        const first = seen.get(identity);
        if (first) {
            // A different comment says why the rule exists: keep it on the surviving rule.
            const merged = comment !== undefined && !(first.rule.comment as string | undefined)?.split("; ").includes(comment as string);
            if (merged) first.rule.comment = first.rule.comment ? `${first.rule.comment}; ${comment}` : comment;
            notes.push(note("duplicate", key,
                `${ruleSummary(rule)}${comment ? ` ("${comment}")` : ""} matches the same traffic as firewall.rules[${first.index}]: removed (the catalog rejects a rule that can never fire)` +
                (merged ? "; its comment is appended to the kept rule's" : "")));
            return;
        }
        seen.set(identity, { index: i, rule });
        rules.push(rule);
    });
    if (renamedPort) notes.push(note("changed", "firewall.rules[].port", "renamed dport (Proxmox's name for the destination port)"));
    if (kind === "lxc" && rules.length > 1) {
        notes.push(note("changed", "firewall.rules", "applied in file order (the original created them one by one and Proxmox prepends each, which reversed them)"));
    }
    const firewall = compact({ enabled: enabled ? undefined : false, rules: rules.length > 0 ? rules : undefined });
    return Object.keys(firewall).length > 0 ? firewall : undefined;
};
