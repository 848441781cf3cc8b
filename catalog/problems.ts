// Located catalog problems. Every problem names a file, a line and column, the field and what was expected, and all of
// them are reported together: a user fixes the whole catalog in one pass instead of one error per run.

export interface Problem {
    file: string; // as shown to the user, e.g. guests/103-step-ca.yaml
    line: number;
    col: number;
    field: string; // dotted path, e.g. firewall.rules[2].action; "(file)" for whole-file problems
    message: string;
}

/**
 * A value as a message shows it: JSON-quoted (so a control character cannot forge a line of the report), YAML's
 * spelling for the numbers JSON has none for, and long values cut (a 10 MB description is not repeated in full).
 */
export const showValue = (v: unknown, max = 80): string => {
    if (typeof v === "number" && !Number.isFinite(v)) return Number.isNaN(v) ? ".nan" : v > 0 ? ".inf" : "-.inf";
    const text = JSON.stringify(v) ?? String(v);
    return text.length <= max ? text : `${text.slice(0, max)}... (${typeof v === "string" ? v.length : text.length} characters)`;
};

export const formatProblem = (p: Problem): string => `${p.file}:${p.line}:${p.col} ${p.field}: ${p.message}`;

export const sortProblems = (problems: Problem[]): Problem[] =>
    [...problems].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.field.localeCompare(b.field));

/** Thrown by the loader; index.ts turns it into a pulumi.RunError (clean exit, no stack trace). */
export class CatalogError extends Error {
    readonly problems: Problem[];
    constructor(problems: Problem[]) {
        const sorted = sortProblems(problems);
        const n = sorted.length;
        super(`The guest catalog has ${n} problem${n === 1 ? "" : "s"}:\n${sorted.map(formatProblem).join("\n")}`);
        this.name = "CatalogError";
        this.problems = sorted;
    }
}

/** Field path as users read it: network.ip, firewall.rules[2].action. */
export const fieldPath = (path: readonly PropertyKey[]): string =>
    path.reduce<string>((acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), "") ||
    "(file)";
