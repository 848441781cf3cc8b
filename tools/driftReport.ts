// Which guests drifted: reads the output of the nightly drift check (`pulumi preview --refresh --json`, or the text of
// `pulumi refresh --preview-only --diff`) and names the guests whose resources changed outside Pulumi. Resources map
// to guests by name: a guest's component is named by its ID and its children `<id>-<role>` (103-ct, 103-fw-rules).
//
//   ts-node -T tools/driftReport.ts drift.json [refresh.txt ...]    exit 0: no drift, 1: drift, 2: unreadable input
import * as fs from "fs";

export interface DriftedResource {
    urn: string;
    name: string;
    type: string;
    /** What would happen to bring it back: update, replace, create (it is gone), delete (it appeared). */
    op: string;
    /** Top-level properties that differ, when the input says. */
    properties: string[];
}

export interface DriftReport {
    /** Guest ID -> its drifted resources, in order of first appearance. */
    guests: Map<number, DriftedResource[]>;
    /** Drifted resources that belong to no guest (the provider, the stack). */
    other: DriftedResource[];
}

/** Operations that mean "nothing to do". */
const NO_CHANGE = new Set(["same", "read"]);
/** Step operations the engine prints as `(op)` after a resource type. */
const OPS = new Set(["same", "create", "update", "delete", "replace", "create-replacement", "delete-replaced", "read", "read-replacement", "refresh", "import", "import-replacement", "discard", "discard-replaced", "remove-pending-replace"]);

export const parseUrn = (urn: string): { typeChain: string[]; name: string } => {
    const parts = urn.split("::");
    if (parts.length < 4 || !parts[0].startsWith("urn:pulumi:")) throw new Error(`not a Pulumi URN: ${urn}`);
    return { typeChain: parts[2].split("$"), name: parts.slice(3).join("::") };
};

/** The guest a resource belongs to: its component (`phoenix:index:LxcGuest::103`) or a child named `<id>-<role>`. */
export const guestOf = (urn: string): number | undefined => {
    const { typeChain, name } = parseUrn(urn);
    if (!/^phoenix:index:(LxcGuest|VmGuest)$/.test(typeChain[0])) return undefined;
    const m = /^(\d+)(?:-|$)/.exec(name);
    return m ? Number(m[1]) : undefined;
};

const resource = (urn: string, op: string, properties: string[]): DriftedResource => {
    const { typeChain, name } = parseUrn(urn);
    return { urn, name, type: typeChain[typeChain.length - 1], op, properties };
};

/** Steps of `pulumi preview --json` (after a refresh, every step that is not "same" is drift). */
export const driftFromPreviewJson = (json: unknown): DriftedResource[] => {
    const steps = (json as { steps?: unknown })?.steps;
    if (!Array.isArray(steps)) throw new Error('expected the output of pulumi preview --json (an object with "steps")');
    return steps.flatMap((s: any) => {
        if (typeof s?.urn !== "string" || typeof s?.op !== "string" || NO_CHANGE.has(s.op)) return [];
        const props = [...new Set<string>([...(s.diffReasons ?? []), ...Object.keys(s.detailedDiff ?? {}).map((k) => k.split(/[.[]/)[0])])];
        // A refresh step without a difference is not drift.
        if (s.op === "refresh" && props.length === 0) return [];
        return [resource(s.urn, s.op, props)];
    });
};

/**
 * The text of `pulumi refresh --preview-only --diff` (or `pulumi preview --diff`): a header `~ <type>: (update)`, the
 * resource's `[urn=...]`, then its changed properties one level deeper (`~ memory: {`); nested lines are ignored.
 */
export const driftFromText = (text: string): DriftedResource[] => {
    const found: DriftedResource[] = [];
    let op: string | undefined;
    let propertyIndent = -1;
    let current: DriftedResource | undefined;
    for (const line of text.split("\n")) {
        const header = /^(\s*)(?:[~+\-]+\s)?\S.*:\s+\(([a-z-]+)\)\s*$/.exec(line);
        if (header && OPS.has(header[2])) {
            op = header[2];
            propertyIndent = header[1].length + 2;
            current = undefined;
            continue;
        }
        const urn = /^\s*\[urn=(urn:pulumi:[^\]]+)\]\s*$/.exec(line);
        if (urn && op && !NO_CHANGE.has(op)) {
            current = resource(urn[1], op, []);
            found.push(current);
            continue;
        }
        const prop = /^(\s*)[~+\-]\s*([A-Za-z_][A-Za-z0-9_]*)(?:\[\d+\])?\s*:/.exec(line);
        if (current && prop && prop[1].length === propertyIndent && !current.properties.includes(prop[2])) current.properties.push(prop[2]);
    }
    // As in the JSON: a refreshed resource without a changed property is not drift.
    return found.filter((r) => r.op !== "refresh" || r.properties.length > 0);
};

export const groupByGuest = (drifted: DriftedResource[]): DriftReport => {
    const guests = new Map<number, DriftedResource[]>();
    const other: DriftedResource[] = [];
    const seen = new Set<string>();
    for (const r of drifted) {
        if (seen.has(r.urn)) continue; // the same resource in two inputs (JSON and text) counts once
        seen.add(r.urn);
        const id = guestOf(r.urn);
        if (id === undefined) other.push(r);
        else guests.set(id, [...(guests.get(id) ?? []), r]);
    }
    return { guests, other };
};

const describeResource = (r: DriftedResource): string => {
    const what = r.op === "create" ? "gone (would be re-created)" : r.op === "delete" ? "not in the stack (would be deleted)" : r.op;
    return `${r.name} [${r.type}]: ${what}${r.properties.length > 0 ? ` (${r.properties.join(", ")})` : ""}`;
};

export const formatReport = (report: DriftReport): string => {
    const ids = [...report.guests.keys()].sort((a, b) => a - b);
    if (ids.length === 0 && report.other.length === 0) return "No drift: every guest matches the stack's state.";
    const lines = [`Drift in ${ids.length} guest${ids.length === 1 ? "" : "s"}${ids.length > 0 ? `: ${ids.join(", ")}` : ""}`];
    for (const id of ids) {
        lines.push(`  guest ${id}:`);
        for (const r of report.guests.get(id)!) lines.push(`    ${describeResource(r)}`);
    }
    if (report.other.length > 0) {
        lines.push("  not part of a guest:");
        for (const r of report.other) lines.push(`    ${describeResource(r)}`);
    }
    lines.push("Restore the catalog's state with `pulumi up`, or change the catalog to match what was changed by hand.");
    return lines.join("\n");
};

/** Reads each file: the preview JSON when it parses as JSON, otherwise diff text. */
export const readDrift = (files: string[]): DriftReport =>
    groupByGuest(
        files.flatMap((f) => {
            const text = fs.readFileSync(f, "utf8");
            let json: unknown;
            try {
                json = JSON.parse(text);
            } catch {
                return driftFromText(text); // not JSON: the diff text (or a CLI error message, which names no URN)
            }
            return driftFromPreviewJson(json);
        }),
    );

if (require.main === module) {
    const files = process.argv.slice(2);
    if (files.length === 0) {
        console.error("usage: ts-node -T tools/driftReport.ts <preview.json | refresh-diff.txt>...");
        process.exit(2);
    }
    try {
        const report = readDrift(files);
        console.log(formatReport(report));
        process.exit(report.guests.size > 0 || report.other.length > 0 ? 1 : 0);
    } catch (e) {
        console.error(`driftReport: ${(e as Error).message}`);
        process.exit(2);
    }
}
