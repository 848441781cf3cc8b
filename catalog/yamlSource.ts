// A parsed YAML file that can say where any field is, so every problem points at a line and column.
import * as fs from "fs";
import { type Alias, isMap, isPair, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from "yaml";
import { type Problem, fieldPath } from "./problems";

/**
 * Alias expansions a file may make (the yaml package's default): enough for any catalog, and a bound on a "billion
 * laughs" file, whose few lines of nested aliases would otherwise expand to gigabytes.
 */
export const MAX_ALIAS_COUNT = 100;

/**
 * A catalog file's text, or why it cannot be read, as a problem located in it: a directory or a broken symbolic link
 * where a guest file should be, a file that cannot be opened, bytes that are not UTF-8 (Node would silently replace
 * them, and the catalog would hold values nobody wrote).
 */
const readText = (absolutePath: string): { text?: string; problem?: { line: number; col: number; message: string } } => {
    let bytes: Buffer;
    try {
        bytes = fs.readFileSync(absolutePath);
    } catch (e) {
        return { problem: { line: 1, col: 1, message: unreadable(absolutePath, e as NodeJS.ErrnoException) } };
    }
    try {
        return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
    } catch {
        const at = firstInvalidUtf8(bytes);
        const before = bytes.subarray(0, at).toString("utf8").split("\n");
        const hex = bytes.subarray(at, at + 1).toString("hex");
        return { problem: { line: before.length, col: before[before.length - 1].length + 1, message: `not UTF-8 text (byte 0x${hex} here); save the file as UTF-8` } };
    }
};

const unreadable = (absolutePath: string, e: NodeJS.ErrnoException): string => {
    switch (e.code) {
        case "EISDIR":
            return "a directory, not a guest file: rename it so its name does not end in .yaml, or move it out of the catalog";
        case "ENOENT": {
            let target: string | undefined;
            try {
                target = fs.readlinkSync(absolutePath);
            } catch {
                target = undefined;
            }
            return target !== undefined ? `a symbolic link to ${target}, which does not exist` : "disappeared while the catalog was read";
        }
        case "ELOOP":
            return "a symbolic link that loops (it points, through other links, back to itself)";
        case "EACCES":
        case "EPERM":
            return "cannot be read: permission denied (the user running pulumi needs read access)";
        default:
            return `cannot be read: ${e.code ?? e.name} ${e.message}`;
    }
};

/** Offset of the first byte that does not start or continue a well-formed UTF-8 sequence. */
const firstInvalidUtf8 = (bytes: Buffer): number => {
    const decoder = new TextDecoder("utf-8", { fatal: true });
    // One sequence at a time, its width from its lead byte: the first that does not decode alone is the bad byte.
    let lo = 0;
    while (lo < bytes.length) {
        const width = bytes[lo] < 0x80 ? 1 : bytes[lo] >= 0xf0 ? 4 : bytes[lo] >= 0xe0 ? 3 : 2;
        try {
            decoder.decode(bytes.subarray(lo, lo + width));
        } catch {
            return lo;
        }
        lo += width;
    }
    return bytes.length;
};

export class YamlSource {
    readonly problems: Problem[] = [];
    readonly data: unknown;
    readonly text: string;
    private readonly doc: Document;
    private readonly lines = new LineCounter();

    constructor(readonly file: string, absolutePath: string) {
        const read = readText(absolutePath);
        this.text = read.text ?? "";
        // An unreadable file still gets a (empty) document, so everything that locates a problem in it works.
        this.doc = parseDocument(this.text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
        if (read.problem) {
            this.problems.push({ file, ...read.problem, field: "(file)" });
            this.data = undefined;
            return;
        }
        // One syntax error usually drags others after it: report the first, and say how many follow.
        const [first, ...more] = this.doc.errors;
        if (first) {
            const pos = this.lines.linePos(first.pos[0]);
            const after = more.length > 0 ? ` (${more.length} more YAML error${more.length === 1 ? "" : "s"} after it, probably from this one)` : "";
            this.problems.push({ file, line: pos.line, col: pos.col, field: "(yaml)", message: `${first.message.split("\n")[0]}${after}` });
            this.data = undefined;
            return;
        }
        this.data = this.toData();
    }

    /** The document as plain data; an alias bomb or an alias to no anchor becomes a located problem, not an exception. */
    private toData(): unknown {
        try {
            return this.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
        } catch (e) {
            const aliases: Alias[] = [];
            visit(this.doc, { Alias: (_, node) => void aliases.push(node) });
            const message = e instanceof Error ? e.message : String(e);
            const unresolved = /^Unresolved alias.*: (.*)$/.exec(message)?.[1];
            const at = (unresolved !== undefined ? aliases.find((a) => a.source === unresolved) : aliases[0])?.range?.[0];
            const pos = at !== undefined ? this.lines.linePos(at) : { line: 1, col: 1 };
            const what = unresolved !== undefined
                ? `alias *${unresolved} refers to no anchor &${unresolved} defined before it`
                : /Excessive alias count/.test(message)
                  ? `aliases expand to more than ${MAX_ALIAS_COUNT} copies; a catalog file may not expand that far (a "billion laughs" file would need gigabytes)`
                  : message.split("\n")[0];
            this.problems.push({ file: this.file, line: pos.line, col: pos.col, field: "(yaml)", message: what });
            return undefined;
        }
    }

    /** A problem at the field's value, or at its nearest existing parent when the field is missing. */
    problemAt(path: readonly PropertyKey[], message: string, atKey = false): Problem {
        return { file: this.file, ...this.position(path, atKey), field: fieldPath(path), message };
    }

    private position(path: readonly PropertyKey[], atKey: boolean): { line: number; col: number } {
        for (let n = path.length; n >= 0; n--) {
            const head = path.slice(0, n) as (string | number)[];
            const node = this.nodeAt(head, atKey && n === path.length);
            if (node?.range) {
                const { line, col } = this.lines.linePos(node.range[0]);
                return { line, col };
            }
        }
        return { line: 1, col: 1 };
    }

    private nodeAt(path: (string | number)[], atKey: boolean): Node | undefined {
        if (path.length === 0) return (this.doc.contents as Node | null) ?? undefined;
        if (atKey) {
            const parent = this.doc.getIn(path.slice(0, -1), true);
            if (isMap(parent)) {
                const last = path[path.length - 1];
                const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === last);
                if (pair && isScalar(pair.key)) return pair.key;
            }
        }
        const node = this.doc.getIn(path, true);
        return node && typeof node === "object" && "range" in (node as object) ? (node as Node) : undefined;
    }
}
