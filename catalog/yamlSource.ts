// A parsed YAML file that can say where any field is, so every problem points at a line and column.
import * as fs from "fs";
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { type Problem, fieldPath } from "./problems";

export class YamlSource {
    readonly problems: Problem[] = [];
    readonly data: unknown;
    private readonly doc: Document;
    private readonly lines = new LineCounter();

    constructor(readonly file: string, absolutePath: string) {
        const text = fs.readFileSync(absolutePath, "utf8");
        this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
        for (const e of this.doc.errors) {
            const pos = this.lines.linePos(e.pos[0]);
            this.problems.push({ file, line: pos.line, col: pos.col, field: "(yaml)", message: e.message.split("\n")[0] });
        }
        this.data = this.doc.errors.length > 0 ? undefined : this.doc.toJS();
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
