// The parameter formats have one table (features/lib/common.sh) and two readers: the scripts' check_format (bash
// ERE) and the catalog (JavaScript). They must agree, or the catalog would pass a value the script refuses on the
// guest, after everything before it was deployed. Checked on the scripts' examples and seeded variations of them.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ABSOLUTE_PATH_RE } from "../catalog/fields";
import { LINES_FORMAT, paramFormatProblem, parseFormats } from "../catalog/paramFormats";
import { parseScriptHeader } from "../catalog/scripts";
import { ROOT } from "./helpers";

const COMMON = fs.readFileSync(path.join(ROOT, "features/lib/common.sh"), "utf8");
const formats = parseFormats(COMMON);

/** The valid example of each format, from test/bats/params.bats (the one list of them). */
const examples = (): Map<string, string> => {
    const bats = fs.readFileSync(path.join(ROOT, "test/bats/params.bats"), "utf8");
    const block = /^declare -gA EXAMPLE=\(\n([\s\S]*?)^\)/m.exec(bats)![1];
    return new Map([...block.matchAll(/^\s*\[([a-z0-9-]+)\]='([^']*)'$/gm)].map((m) => [m[1], m[2]]));
};

const random = ((seed: number) => () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
})(20260912);
const CHARS = [..."abcXYZ019.-_:/@,;=+*[]% #'\"\\$`~é漢", "\n", "\r", "\t", "\x1b", "\x00", "\x85", "\u2028"];
const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];

/** Variations of a valid value: one character inserted, replaced or removed, a piece appended; and random strings. */
const variations = (example: string, n: number): string[] =>
    Array.from({ length: n }, (_, i) => {
        const at = Math.floor(random() * (example.length + 1));
        switch (i % 5) {
            case 0: return example.slice(0, at) + pick(CHARS) + example.slice(at);
            case 1: return example.slice(0, at) + pick(CHARS) + example.slice(at + 1);
            case 2: return example.slice(0, at) + example.slice(at + 1);
            case 3: return example + pick(CHARS) + pick(CHARS);
            default: return Array.from({ length: 1 + Math.floor(random() * 20) }, () => pick(CHARS)).join("");
        }
    });

/** check_format's verdicts, in one bash run: a subshell per value (it exits on a refusal). */
const bashAccepts = (cases: [string, string][]): boolean[] => {
    const script = [
        "SCRIPT_NAME=test",
        `source ${JSON.stringify(path.join(ROOT, "features/lib/common.sh"))}`,
        "while IFS= read -r -d '' format && IFS= read -r -d '' PHOENIX_VALUE; do",
        '  if (check_format PHOENIX_VALUE "$format") >/dev/null 2>&1; then printf 1; else printf 0; fi',
        "done",
    ].join("\n");
    // A NUL cannot be in a shell variable: such values are left out by the callers.
    const r = spawnSync("bash", ["-c", script], { input: cases.map(([f, v]) => `${f}\0${v}\0`).join(""), encoding: "utf8", env: { PATH: process.env.PATH, LC_ALL: "C.UTF-8" } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.length, cases.length, r.stderr);
    return [...r.stdout].map((c) => c === "1");
};

describe("parameter formats: one table, read alike by the scripts and the catalog", () => {
    it("reads every format of features/lib/common.sh, each with a hint", () => {
        assert.ok(formats.size >= 20, `${formats.size} formats`);
        for (const f of formats.values()) assert.ok(f.hint.length > 0, f.name);
    });

    it("never passes in the catalog what check_format refuses on the guest (and refuses the same, ASCII aside)", () => {
        const ex = examples();
        const cases: [string, string][] = [];
        for (const name of [...formats.keys(), LINES_FORMAT]) {
            const example = ex.get(name);
            assert.ok(example !== undefined, `test/bats/params.bats has no example for ${name}`);
            for (const v of [example, ...variations(example, 40)]) if (!v.includes("\0")) cases.push([name, v]);
        }
        const bash = bashAccepts(cases);
        const disagree = cases
            .map(([f, v], i) => ({ f, v, ts: paramFormatProblem(formats, f, v) === undefined, sh: bash[i] }))
            .filter((c) => c.ts !== c.sh);
        assert.deepEqual(disagree.filter((c) => c.ts && !c.sh).map((c) => `${c.f} ${JSON.stringify(c.v)}`), [], "the catalog passes values the script refuses");
        // The catalog may be stricter only about characters beyond ASCII (C1 controls, U+2028), which bash's regex
        // reads byte by byte in the C locale.
        assert.deepEqual(disagree.filter((c) => /^[\x00-\x7f]*$/.test(c.v)).map((c) => `${c.f} ${JSON.stringify(c.v)}: catalog ${c.ts}, script ${c.sh}`), []);
        const accepted = cases.filter((_, i) => bash[i]).length;
        assert.ok(accepted > formats.size && accepted < cases.length, `both outcomes occur (${accepted} of ${cases.length} accepted)`);
    });

    it("the catalog's path fields use the scripts' absolute-path expression", () => {
        const table = /^phoenix_format absolute-path '([^']*)'/m.exec(COMMON)![1];
        assert.equal(ABSOLUTE_PATH_RE.source, table.replace(/\//g, "\\/"));
    });

    it("every script parameter names a format of the table (or none: text)", () => {
        for (const dir of ["features", "features/apps"]) {
            for (const f of fs.readdirSync(path.join(ROOT, dir)).filter((x) => x.endsWith(".sh"))) {
                for (const p of parseScriptHeader(fs.readFileSync(path.join(ROOT, dir, f), "utf8")).values()) {
                    assert.ok(p.format === LINES_FORMAT || formats.has(p.format), `${dir}/${f} ${p.name}: unknown format ${p.format}`);
                    if (p.default !== undefined) assert.equal(paramFormatProblem(formats, p.format, p.default), undefined, `${dir}/${f} ${p.name}: default ${p.default}`);
                }
            }
        }
    });
});
