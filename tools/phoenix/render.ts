// Writes the import as catalog files: <id>-<slug>.yaml per guest and defaults.yaml, each with the editor's schema
// modeline (schema.json and defaults.schema.json are copied next to them), in the layout of the hand-written guests/:
// short objects and lists on one line, everything else in blocks.
import * as fs from "fs";
import * as path from "path";
import { Document, isPair, isScalar, isSeq, Scalar, visit } from "yaml";
import { ImportError, type ImportResult, type Obj } from "./model";

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
            if (isScalar(pair.key) && pair.key.value === "mac" && isScalar(pair.value)) pair.value.type = Scalar.QUOTE_DOUBLE;
        },
    });
    return `${header.join("\n")}\n${doc.toString({ lineWidth: 0, flowCollectionPadding: true })}`;
};

const SCHEMA_DIR = path.resolve(__dirname, "..", "..", "guests");

/** File name -> content, for every file the import writes. */
export const renderCatalog = (result: ImportResult): Map<string, string> => {
    const files = new Map<string, string>();
    const from = (f: string) => `${f} (${result.guests.length} guests imported by npm run import-phoenix; see its report)`;
    files.set(
        "defaults.yaml",
        toYaml(result.defaults, [
            "# yaml-language-server: $schema=./defaults.schema.json",
            `# Shared defaults, from ${from("phoenix_hypervisor_config.json and phoenix_vm_configs.json vm_defaults")}.`,
        ]),
    );
    for (const g of result.guests) {
        const origin = g.kind === "lxc" ? `phoenix_lxc_configs.json lxc_configs["${g.id}"]` : `phoenix_vm_configs.json vms[vmid=${g.id}]`;
        const header = ["# yaml-language-server: $schema=./schema.json", `# ${g.name}: imported from ${origin} by npm run import-phoenix.`];
        if (g.missingScripts.length > 0) header.push(`# Needs scripts this project does not have yet: ${g.missingScripts.join(", ")}.`);
        files.set(g.file, toYaml(g.guest, header));
    }
    for (const schema of ["schema.json", "defaults.schema.json"]) {
        const p = path.join(SCHEMA_DIR, schema);
        if (fs.existsSync(p)) files.set(schema, fs.readFileSync(p, "utf8"));
    }
    for (const [file, text] of files) {
        const leaked = result.secretValues.find((s) => s.length > 0 && text.includes(s));
        if (leaked !== undefined) throw new ImportError(`refusing to write ${file}: it would contain a secret value from the original's configuration`);
    }
    return files;
};

/**
 * A guest that already has a file in the output directory under another name (9000-ubuntu-cloud-template.yaml for
 * 9000-ubuntu-2404-cloud-template.yaml) keeps that name: two files for one ID would make the catalog fail.
 */
export const adoptExistingNames = (result: ImportResult, outDir: string): void => {
    if (!fs.existsSync(outDir)) return;
    const existing = fs.readdirSync(outDir).filter((f) => /^\d+-.*\.ya?ml$/.test(f));
    for (const g of result.guests) {
        const same = existing.filter((f) => Number(f.split("-")[0]) === g.id);
        if (same.length === 1) g.file = same[0];
    }
};

/** Existing files the import would change (an identical file is not a conflict). */
export const conflicts = (outDir: string, files: Map<string, string>): string[] =>
    [...files].filter(([f, text]) => fs.existsSync(path.join(outDir, f)) && fs.readFileSync(path.join(outDir, f), "utf8") !== text).map(([f]) => f);

export const writeCatalog = (outDir: string, files: Map<string, string>, force: boolean): { written: string[]; unchanged: string[] } => {
    const existing = conflicts(outDir, files);
    if (existing.length > 0 && !force) {
        throw new ImportError(`refusing to overwrite ${existing.length} existing file${existing.length === 1 ? "" : "s"} in ${outDir} (use --force): ${existing.join(", ")}`);
    }
    fs.mkdirSync(outDir, { recursive: true });
    const written: string[] = [];
    const unchanged: string[] = [];
    for (const [f, text] of files) {
        const p = path.join(outDir, f);
        if (fs.existsSync(p) && fs.readFileSync(p, "utf8") === text) unchanged.push(f);
        else {
            fs.writeFileSync(p, text);
            written.push(f);
        }
    }
    return { written, unchanged };
};
