// The change preview (npm run plan -- --since REF) as text, for the terminal and the pull-request job summary, and as
// the plan's JSON document plus "changes" and "summary". Guests whose container or VM would be replaced or deleted
// come first, in words a reviewer cannot miss. Field names only: never a value (secrets stay out).
import { DEPLOY_PARALLEL } from "./plan";
import { planJson, warningLines } from "./render";
import { MACHINE_TYPES, guestOfParent } from "./recorded";
import { type ChangePlan, isMigration } from "./since";
import type { Change } from "./twin";
import { COMMAND, UNMODELLED, VM, rulesFor } from "./twin/rules";
import { ruleFor } from "./twin/values";

const SYMBOL: Record<Change["op"], string> = { create: "+ ", update: "~ ", replace: "+-", delete: "- ", same: "  " };

const guestOf = (c: Change): number | undefined => guestOfParent(c.parent)?.id;

/** The source lines behind some rules (bpg file:lines, e.g. `VM:7256-7266, 7025-7040`), for a reason in words. */
const sources = (rules: Change["rules"]): string => [...new Set(rules.flatMap((r) => r.cite.match(/\b[A-Z]{2,6}:\d[\d-]*(?:,\s*\d[\d-]*)*/g) ?? []))].join(", ");

const allowCommand = (id: number): string => `pulumi config set --path 'phoenix:allowReplace[0]' ${id}`;

/** What runs for this operation, in words. */
const note = (c: Change): string => {
    const parts: string[] = [];
    if (c.type === COMMAND) {
        if (c.runs.some((r) => r.ran === "create")) parts.push("runs again");
        else if (c.runs.some((r) => r.ran === "update")) parts.push("runs only its `update` (nothing re-runs)");
        if (c.runs.some((r) => r.ran === "delete")) parts.push("runs its delete");
    }
    if (isMigration(c)) parts.push("migrates the VM to its new node (qm migrate, online with its local disks: VM:7819-7836)");
    if (c.reboot) parts.push(`the provider reboots the guest (${sources(c.rules.filter((r) => r.reboot !== "no"))})`);
    if (c.op === "update" && c.type !== COMMAND && c.rules.length > 0 && c.rules.every((r) => r.change === "state")) parts.push("state only");
    if (c.deleteFirst && c.op === "replace" && !c.refused) parts.push("deleted first");
    if (c.refused) parts.push("REFUSED: protected");
    if (c.failed) parts.push(`FAILS: ${c.failed}`);
    return parts.join("; ");
};

const dangerLines = (p: ChangePlan): string[] => {
    const machines = p.changes.filter((c) => MACHINE_TYPES.has(c.type) && (c.op === "replace" || c.op === "delete"));
    if (machines.length === 0) return ["No guest's container or VM is replaced or deleted."];
    const names = new Map(p.plan.recorded.guests.map((g) => [g.id, g.name]));
    const out = [`!!! DATA LOSS: ${machines.length === 1 ? "1 guest's container or VM" : `${machines.length} guests' containers or VMs`} would be ${[...new Set(machines.map((m) => (m.op === "replace" ? "REPLACED" : "DELETED")))].join(" or ")}, and every disk on it with it:`];
    for (const m of machines) {
        const id = guestOf(m)!;
        const why =
            m.op === "replace"
                ? `REPLACED: ${m.fields.join(", ")}${m.rules.length > 0 ? ` cannot change in place (${sources(m.rules)})` : ""}`
                : "DELETED: no longer in the selection or the catalog";
        out.push(`!!!   ${id}${names.has(id) ? ` ${names.get(id)}` : ""}: ${m.name} ${why}`);
        if (m.refused && m.op === "replace") {
            out.push(`!!!     REFUSED by pulumi up: it is protected. To allow it, add ${id} to phoenix:allowReplace (${allowCommand(id)}), or set protect: false in its catalog file.`);
        } else if (m.refused) {
            out.push(`!!!     REFUSED by pulumi up: the state protects it. To delete it: pulumi state unprotect '${m.urn}', then pulumi up;`);
            out.push(`!!!     or keep it selected, add ${id} to phoenix:allowReplace and pulumi up (that lifts the protection), then remove it from the selection and pulumi up.`);
        } else {
            out.push(`!!!     allowed: not protected (phoenix:allowReplace lists ${id}, or its catalog sets protect: false)`);
        }
    }
    return out;
};

/** Catalog edits that need a new container or VM, held back by ignoreChanges until phoenix:allowReplace lists the guest. */
const heldLines = (p: ChangePlan): string[] => {
    if (p.held.length === 0) return [];
    const names = new Map(p.plan.recorded.guests.map((g) => [g.id, g.name]));
    const out = [`!!! NOT APPLIED: ${p.held.length === 1 ? "1 guest's catalog asks" : `${p.held.length} guests' catalogs ask`} for a new container or VM, which pulumi up holds back (ignoreChanges) and so does not do:`];
    for (const c of p.held) {
        const id = guestOf(c)!;
        out.push(`!!!   ${id}${names.has(id) ? ` ${names.get(id)}` : ""}: ${c.name} ${c.held.join(", ")} cannot change in place (${sources(heldRules(c))}); the guest stays as it was made`);
        out.push(`!!!     To carry it out (a new ${c.type === VM ? "VM" : "container"}, its disks lost): add ${id} to phoenix:allowReplace (${allowCommand(id)}), then pulumi up; or undo the edit.`);
    }
    return out;
};

/** The rules behind the held fields (the change's own rules are those of what it does carry out). */
const heldRules = (c: Change): Change["rules"] => c.held.map((f) => ruleFor(rulesFor(c.type), f, UNMODELLED));

export const renderChangeText = (p: ChangePlan): string => {
    const out: string[] = [];
    out.push(`Phoenix change preview: stack ${p.plan.stack}, the working tree against ${p.ref} (${p.commit.slice(0, 7)})`);
    out.push(`  prior state: the program at ${p.ref} (${p.refProgram}) deployed through the provider twin: pulumi up, then pulumi refresh as the deploy workflow does`);
    out.push("");
    out.push(...dangerLines(p), ...heldLines(p), "");
    const unchanged = p.all.filter((c) => c.op === "same" && c.custom).length;
    if (p.changes.length === 0) {
        out.push(`No changes: pulumi up would change nothing (${unchanged} resources unchanged).`);
    } else {
        const s = p.summary;
        out.push(`Changes: ${s.create} to create, ${s.update} to update, ${s.replace} to replace, ${s.delete} to delete${s.refused > 0 ? `, ${s.refused} refused` : ""} (${unchanged} unchanged)`);
        const names = new Map(p.plan.recorded.guests.map((g) => [g.id, g.name]));
        const order = [...p.plan.recorded.guests.map((g) => g.id)];
        const groups = new Map<string, Change[]>();
        for (const c of p.changes) {
            const g = guestOf(c) ?? (/^(\d+)$/.test(c.name) ? Number(c.name) : undefined);
            const key = g === undefined ? "stack" : String(g);
            if (g !== undefined && !order.includes(g)) order.push(g);
            (groups.get(key) ?? groups.set(key, []).get(key)!).push(c);
        }
        const width = Math.max(...p.changes.map((c) => c.name.length));
        for (const key of [...order.map(String), "stack"]) {
            const cs = groups.get(key);
            if (!cs) continue;
            out.push(`  ${key === "stack" ? "stack" : `${key}${names.has(Number(key)) ? ` ${names.get(Number(key))}` : " (removed)"}`}`);
            for (const c of cs) {
                const n = note(c);
                out.push(`    ${SYMBOL[c.op]} ${c.name.padEnd(width)}  ${c.op.padEnd(7)}  ${c.fields.join(", ") || "-"}${n ? `; ${n}` : ""}`.trimEnd());
            }
        }
        out.push("");
        out.push(`Steps that run again (${p.rerun.length}): ${p.rerun.map((c) => c.name).join(", ") || "none"}`);
        const reboots = [...p.reboots].sort((a, b) => a.guest - b.guest).map((r) => `${r.guest} (${r.change.fields.join(", ")})`);
        out.push(`Guests the provider reboots: ${reboots.join("; ") || "none"}`);
        const m = p.makespan;
        out.push(
            `Simulated makespan of the change (only the operations that run): ${m.unlimited} s at unlimited parallelism, ${m.deploy} s at --parallel ${DEPLOY_PARALLEL} (the deploy workflow)` +
                (Number.isFinite(m.parallel) && m.parallel !== DEPLOY_PARALLEL ? `, ${m.atParallel} s at --parallel ${m.parallel}` : ""),
        );
    }
    if (p.error) out.push("", `pulumi up would stop: ${p.error}`);
    out.push(...warningLines(p.warnings));
    return `${out.join("\n")}\n`;
};

const heldOf = (p: ChangePlan, c: Change): { held?: string[] } => {
    const h = p.held.find((x) => x.urn === c.urn);
    return h ? { held: h.held } : {};
};

/** The working tree's plan document, plus exactly "changes" (unchanged resources omitted) and "summary". */
export const changeJson = (p: ChangePlan): unknown => ({
    ...(planJson(p.plan) as object),
    // A held-back edit of an otherwise unchanged machine is an "ignored" operation: pulumi up does not carry it out.
    changes: [
        ...p.changes.map((c) => ({ resource: c.name, type: c.type, op: c.op, fields: c.fields, ...heldOf(p, c) })),
        ...p.held.filter((c) => c.op === "same").map((c) => ({ resource: c.name, type: c.type, op: "ignored", fields: c.held, needsReplacement: true })),
    ],
    summary: p.summary,
});
