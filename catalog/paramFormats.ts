// The parameter formats of the feature scripts, read from features/lib/common.sh (its `phoenix_format NAME 'ERE'
// 'hint'` lines): a script's header names a format per parameter, the script checks its values with check_format,
// and the catalog checks the same expressions here, so a value a script would refuse on the guest is refused before
// anything is deployed. One table, two readers.

export interface ParamFormat {
    name: string;
    re: RegExp;
    hint: string;
}

/** Several lines of text (a generated file, a PEM): check_format's special case, each line checked as `text`. */
export const LINES_FORMAT = "lines";
export const TEXT_FORMAT = "text";

/**
 * The tables are POSIX ERE written to read alike in JavaScript; the one POSIX class they use, [:cntrl:], becomes
 * the C0 and C1 controls plus the Unicode line and paragraph separators (glibc counts all of them as cntrl in a
 * UTF-8 locale, so the catalog never accepts what a script would refuse).
 */
const toJs = (ere: string): RegExp => {
    const classes = ere.match(/\[:[a-z]+:\]/g) ?? [];
    const unknown = classes.filter((c) => c !== "[:cntrl:]");
    if (unknown.length > 0) throw new Error(`features/lib/common.sh: format ${ere} uses ${unknown.join(", ")}; only [:cntrl:] is translated`);
    return new RegExp(ere.split("[:cntrl:]").join("\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029"));
};

export const parseFormats = (common: string): Map<string, ParamFormat> => {
    const entries = [...common.matchAll(/^phoenix_format ([a-z0-9-]+) '([^']*)' \\\n\s*'([^']*)'$/gm)];
    if (entries.length === 0) throw new Error("features/lib/common.sh defines no phoenix_format");
    return new Map(entries.map(([, name, ere, hint]) => [name, { name, re: toJs(ere), hint }]));
};

/** What is wrong with a value of the given format (as check_format would say), or undefined. Empty passes, as there. */
export const paramFormatProblem = (formats: ReadonlyMap<string, ParamFormat>, format: string, value: string): string | undefined => {
    if (value === "") return undefined;
    const text = formats.get(TEXT_FORMAT)!;
    if (format === LINES_FORMAT) {
        return value.split("\n").every((line) => line === "" || text.re.test(line)) ? undefined : "expected lines of text without control characters";
    }
    const f = formats.get(format);
    if (!f) return `the script declares an unknown format ${format} (features/lib/common.sh phoenix_format)`;
    return f.re.test(value) ? undefined : `expected ${f.hint}`;
};
