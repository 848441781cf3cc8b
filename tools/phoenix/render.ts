// Writes the import as catalog files: <id>-<slug>.yaml per guest and defaults.yaml, each with the editor's schema
// modeline (schema.json and defaults.schema.json are copied next to them), in the layout of the hand-written guests/:
// short objects and lists on one line, everything else in blocks.
//
// Nothing from the original's files may leave the YAML node it belongs to (a name with a line break must not become a
// `rawLxc:` line, which runs commands as root on the node): values and keys are serialised by the yaml library only,
// a value with an unprintable character other than a line break is double-quoted (escaped, so a YAML 1.1 reader or
// an editor sees no line break either; plain line breaks stay inside a block scalar's indentation), comment text is escaped (printable), and each file is parsed back before it is
// written: it must read as exactly the data the import meant, or nothing is written.
import * as fs from "fs";
import * as path from "path";
import { isDeepStrictEqual } from "util";
import { Document, isPair, isScalar, isSeq, parseAllDocuments, parseDocument, Scalar, visit } from "yaml";
import { showValue } from "../../catalog/problems";
import { ImportError, type ImportResult, type Obj, fsCall, fsErrorMessage, hasUnprintable, isFsError, printable } from "./model";

/** Keys whose (scalar-only) object values are written on one line. */
const FLOW_OBJECTS = new Set(["startup", "traefikService", "pctFeatures", "owner", "cloudInit"]);
/** Keys whose lists stay one item per line (raw config lines read better that way). */
const BLOCK_LISTS = new Set(["rawLxc"]);

const allScalars = (items: unknown[]): boolean => items.every((i) => isScalar(isPair(i) ? i.value : i));

export const toYaml = (data: Obj, header: string[]): string => {
    const doc = new Document(data);
    visit(doc, {
        Map(_, node, ancestors) {
            const parent = ancestors[ancestors.length - 1];
            const key = isPair(parent) && isScalar(parent.key) ? String(parent.key.value) : undefined;
            if (allScalars(node.items) && (isSeq(parent) || (key !== undefined && FLOW_OBJECTS.has(key)))) node.flow = true;
        },
        Seq(_, node, ancestors) {
            const parent = ancestors[ancestors.length - 1];
            const key = isPair(parent) && isScalar(parent.key) ? String(parent.key.value) : undefined;
            if (allScalars(node.items) && !(key && BLOCK_LISTS.has(key))) node.flow = true;
        },
        Pair(_, pair) {
            // A MAC of digits only would read as a base-60 number to a YAML 1.1 reader: always quote it.
            if (isScalar(pair.key) && pair.key.value === "mac" && isScalar(pair.value) && typeof pair.value.value === "string") pair.value.type = Scalar.QUOTE_DOUBLE;
        },
        Scalar(_, node) {
            // Escaped: no plain or block value with a carriage return, a separator or a control character in it (a block
            // scalar keeps plain line breaks inside its indentation).
            if (typeof node.value === "string" && hasUnprintable(node.value.replace(/\n/g, ""))) node.type = Scalar.QUOTE_DOUBLE;
        },
    });
    return `${header.map((line) => `# ${printable(line)}`).join("\n")}\n${doc.toString({ lineWidth: 0, flowCollectionPadding: true })}`;
};

/** The first path at which two plain values differ ("" for the root), or undefined when they are equal. */
const firstDifference = (a: unknown, b: unknown, at = ""): { at: string; value: unknown } | undefined => {
    if (isDeepStrictEqual(a, b)) return undefined;
    const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
    if (isRecord(a) && isRecord(b) && Array.isArray(a) === Array.isArray(b)) {
        for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
            const d = firstDifference(a[k], b[k], Array.isArray(a) ? `${at}[${k}]` : at ? `${at}.${k}` : k);
            if (d) return d;
        }
    }
    return { at: at || "(file)", value: a };
};

/**
 * The last guard before a file is written: read back as the catalog reads it, the text must be exactly the data
 * (nothing more, such as a key smuggled through a comment; nothing changed, such as a value YAML cannot spell).
 */
export const checkReadsBack = (file: string, text: string, data: Obj): void => {
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
    const back = doc.errors.length === 0 ? doc.toJS() : undefined;
    const d = firstDifference(JSON.parse(JSON.stringify(data)), back);
    if (d) {
        throw new ImportError(`refusing to write ${file}: ${printable(d.at)} (${printable(showValue(d.value))}) would not read back as imported${doc.errors.length > 0 ? ` (${printable(doc.errors[0].message.split("\n")[0])})` : ""}; nothing was written`);
    }
};

/** The file's text, checked to read back as its data. */
const fileText = (file: string, data: Obj, header: string[]): string => {
    const text = toYaml(data, header);
    checkReadsBack(file, text, data);
    return text;
};

const SCHEMA_DIR = path.resolve(__dirname, "..", "..", "guests");

/**
 * Secrets at least this long are refused anywhere in a file's text; a shorter one only as a whole value, since it
 * also occurs inside ordinary values (a Portainer password `admin` in the CA provisioner admin@thinkheads.ai).
 */
export const SECRET_SUBSTRING_MIN = 8;

/** Every scalar value (not key) of a YAML or JSON text, as text. */
const scalarValues = (text: string): Set<string> => {
    const values = new Set<string>();
    const walk = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v !== null && typeof v === "object") Object.values(v).forEach(walk);
        else if (typeof v === "string" || typeof v === "number") values.add(String(v));
    };
    for (const doc of parseAllDocuments(text)) if ("toJS" in doc) walk(doc.toJS());
    return values;
};

/** The secret a file would contain: a long one anywhere in its text, a short one as a whole value. */
export const containedSecret = (text: string, secrets: readonly string[]): string | undefined => {
    const long = secrets.find((s) => s.length >= SECRET_SUBSTRING_MIN && text.includes(s));
    if (long !== undefined) return long;
    const short = secrets.filter((s) => s.length > 0 && s.length < SECRET_SUBSTRING_MIN && text.includes(s));
    if (short.length === 0) return undefined;
    const values = scalarValues(text);
    return short.find((s) => values.has(s));
};

/** File name -> content, for every file the import writes. */
export const renderCatalog = (result: ImportResult): Map<string, string> => {
    const files = new Map<string, string>();
    const from = (f: string) => `${f} (${result.guests.length} guests imported by npm run import-phoenix; see its report)`;
    files.set(
        "defaults.yaml",
        fileText("defaults.yaml", result.defaults, [
            "yaml-language-server: $schema=./defaults.schema.json",
            `Shared defaults, from ${from("phoenix_hypervisor_config.json and phoenix_vm_configs.json vm_defaults")}.`,
        ]),
    );
    for (const g of result.guests) {
        const origin = g.kind === "lxc" ? `phoenix_lxc_configs.json lxc_configs["${g.id}"]` : `phoenix_vm_configs.json vms[vmid=${g.id}]`;
        const header = ["yaml-language-server: $schema=./schema.json", `${g.name}: imported from ${origin} by npm run import-phoenix.`];
        if (g.missingScripts.length > 0) header.push(`Needs scripts this project does not have yet: ${g.missingScripts.join(", ")}.`);
        files.set(g.file, fileText(g.file, g.guest, header));
    }
    for (const schema of ["schema.json", "defaults.schema.json"]) {
        const p = path.join(SCHEMA_DIR, schema);
        if (fs.existsSync(p)) files.set(schema, fsCall("cannot read", p, () => fs.readFileSync(p, "utf8")));
    }
    for (const [file, text] of files) {
        if (containedSecret(text, result.secretValues) !== undefined) throw new ImportError(`refusing to write ${file}: it would contain a secret value from the original's configuration`);
    }
    return files;
};

/**
 * A guest that already has a file in the output directory under another name (9000-ubuntu-cloud-template.yaml for
 * 9000-ubuntu-2404-cloud-template.yaml) keeps that name: two files for one ID would make the catalog fail.
 */
export const adoptExistingNames = (result: ImportResult, outDir: string): void => {
    if (!fs.existsSync(outDir)) return;
    checkOutDir(outDir);
    const existing = fsCall("cannot list", outDir, () => fs.readdirSync(outDir)).filter((f) => /^\d+-.*\.ya?ml$/.test(f));
    for (const g of result.guests) {
        const same = existing.filter((f) => Number(f.split("-")[0]) === g.id);
        if (same.length === 1) g.file = same[0];
    }
};

/** --out must be a directory when it exists (it is created otherwise). */
export const checkOutDir = (outDir: string): void => {
    if (fs.existsSync(outDir) && !fsCall("cannot access", outDir, () => fs.statSync(outDir)).isDirectory()) {
        throw new ImportError(`--out ${outDir}: exists and is not a directory`);
    }
};

/** The content of an existing file of the output directory, or undefined when there is none. */
const existingText = (p: string): string | undefined => (fs.existsSync(p) ? fsCall("cannot read", p, () => fs.readFileSync(p, "utf8")) : undefined);

/** Existing files the import would change (an identical file is not a conflict). */
export const conflicts = (outDir: string, files: Map<string, string>): string[] =>
    [...files].filter(([f, text]) => {
        const old = existingText(path.join(outDir, f));
        return old !== undefined && old !== text;
    }).map(([f]) => f);

export const writeCatalog = (outDir: string, files: Map<string, string>, force: boolean): { written: string[]; unchanged: string[] } => {
    const existing = conflicts(outDir, files);
    if (existing.length > 0 && !force) {
        throw new ImportError(`refusing to overwrite ${existing.length} existing file${existing.length === 1 ? "" : "s"} in ${outDir} (use --force): ${existing.join(", ")}`);
    }
    checkOutDir(outDir);
    fsCall("cannot create directory", outDir, () => fs.mkdirSync(outDir, { recursive: true }));
    const written: string[] = [];
    const unchanged: string[] = [];
    for (const [f, text] of files) {
        const p = path.join(outDir, f);
        if (existingText(p) === text) unchanged.push(f);
        else {
            try {
                fs.writeFileSync(p, text);
            } catch (e) {
                if (!isFsError(e)) throw e;
                const done = written.length > 0 ? ` (already written: ${written.join(", ")})` : "";
                throw new ImportError(`${fsErrorMessage(e, "cannot write", p)}${done}`);
            }
            written.push(f);
        }
    }
    return { written, unchanged };
};
