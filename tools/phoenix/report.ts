// The import report: per guest what was dropped, changed, added or removed as a duplicate and why; the guests whose
// features have no script here; the secrets to set by hand. Text for people, JSON (--json) for tools. Names, keys and
// values from the original are printed escaped (printable): a line break or a terminal escape sequence in them cannot
// forge a line of the report.
import { type ImportResult, type Note, type NoteKind, printable } from "./model";

const ORDER: NoteKind[] = ["invalid", "secret", "duplicate", "dropped", "changed", "added"];
const byKind = (notes: Note[]): Note[] => [...notes].sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
const line = (n: Note): string => `    ${n.kind.padEnd(9)} ${n.key}${n.detail ? `: ${n.detail}` : ""}`;

export interface WriteSummary {
    outDir: string;
    written: string[];
    unchanged: string[];
}

export const formatImportReport = (r: ImportResult, written?: WriteSummary): string => {
    const out: string[] = [];
    out.push(`Imported ${r.guests.length} guests from ${r.from}${written ? ` into ${written.outDir}` : ""}.`);
    if (written) {
        out.push(`  written: ${written.written.join(", ") || "none"}`);
        if (written.unchanged.length > 0) out.push(`  unchanged: ${written.unchanged.join(", ")}`);
    }
    out.push("", "defaults.yaml", ...byKind(r.defaultsNotes).map(line));
    for (const g of r.guests) {
        out.push("", `${g.kind === "lxc" ? "Container" : "VM"} ${g.id} ${g.name} -> ${g.file}`);
        out.push(...byKind(g.notes).map(line));
        if (g.missingScripts.length > 0) out.push(`    missing   ${g.missingScripts.join(", ")}: no such script in this project`);
    }
    out.push("", "phoenix_hypervisor_config.json and the files' root keys", ...byKind(r.globalNotes).map(line));
    const missing = r.guests.filter((g) => g.missingScripts.length > 0);
    if (missing.length > 0) {
        const scripts = [...new Set(missing.flatMap((g) => g.missingScripts))].sort();
        out.push("", `Guests whose features have no script here (${missing.length}); the catalog reports them until these scripts exist: ${scripts.join(", ")}`);
        for (const g of missing) out.push(`    ${g.id} ${g.name}: ${g.missingScripts.join(", ")}`);
    }
    // Guest secrets carry the guest's ID: two guests can have the same key (801's and 802's vllm api_key).
    const secrets = [
        ...r.globalNotes.map((n) => ({ n, where: "" })),
        ...r.guests.flatMap((g) => g.notes.map((n) => ({ n, where: `${g.id} ` }))),
    ].filter(({ n }) => n.kind === "secret");
    if (secrets.length > 0) {
        out.push("", "Secrets (never written to the catalog):");
        for (const { n, where } of secrets) out.push(`    ${where}${n.key}: ${n.detail}`);
    }
    return out.map(printable).join("\n");
};

export const importReportJson = (r: ImportResult, written?: WriteSummary): unknown => ({
    from: r.from,
    ...(written ?? {}),
    defaults: { notes: r.defaultsNotes },
    guests: r.guests.map((g) => ({ id: g.id, name: g.name, kind: g.kind, file: g.file, notes: g.notes, missingScripts: g.missingScripts })),
    global: { notes: r.globalNotes },
});
