// npm run import-phoenix -- --from DIR --out DIR [--node NAME] [--force] [--json]
// Reads the original Phoenix configuration (phoenix_lxc_configs.json, phoenix_vm_configs.json,
// phoenix_hypervisor_config.json) and writes one catalog file per guest plus defaults.yaml into --out, then prints
// the import report and what the catalog check says about the result. Existing different files are never
// overwritten without --force; no secret value is ever written. Bad arguments, bad input and file system errors end
// with one line on stderr and exit code 1.
import * as path from "path";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import { importPhoenix } from "./phoenix/importer";
import { DEFAULT_NODE } from "./phoenix/defaults";
import { ImportError, fsErrorMessage, isFsError, printable } from "./phoenix/model";
import { adoptExistingNames, renderCatalog, writeCatalog } from "./phoenix/render";
import { formatImportReport, importReportJson } from "./phoenix/report";

const USAGE = "usage: npm run import-phoenix -- --from <dir with phoenix_*.json> --out <catalog dir> [--node <name>] [--force] [--json]";

const HELP = `${USAGE}

Reads the original Phoenix configuration (phoenix_lxc_configs.json, phoenix_vm_configs.json and
phoenix_hypervisor_config.json in --from) and writes one <id>-<name>.yaml per guest, defaults.yaml and the editor
schemas into --out, then prints what it dropped, changed or added for every key and what the catalog check says.

  --from DIR    the original's etc/ directory
  --out DIR     the catalog directory to write (created if missing)
  --node NAME   the Proxmox node the original ran on: the key of defaults.yaml nodes (its GPUs and NVIDIA
                driver) and the stack's phoenix:node (default: ${DEFAULT_NODE})
  --force       overwrite files in --out that differ from the import (never done otherwise)
  --json        print the report as JSON
  --help        this text

No secret value is ever written: each is reported with the stack secret to set instead.
`;

interface Args {
    from: string;
    out: string;
    node: string;
    force: boolean;
    json: boolean;
    help: boolean;
}

const VALUE_FLAGS = { "--from": "from", "--out": "out", "--node": "node" } as const;

export const parseArgs = (argv: string[]): Args => {
    const args: Partial<Args> = { force: false, json: false, help: false, node: DEFAULT_NODE };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--force") args.force = true;
        else if (a === "--json") args.json = true;
        else if (a === "--help" || a === "-h") args.help = true;
        else if (a in VALUE_FLAGS && argv[i + 1] !== undefined && !argv[i + 1].startsWith("--")) args[VALUE_FLAGS[a as keyof typeof VALUE_FLAGS]] = argv[++i];
        else throw new ImportError(`unexpected argument ${printable(JSON.stringify(a))}\n${USAGE}`);
    }
    if (args.help) return args as Args;
    if (!args.from || !args.out) throw new ImportError(`--from and --out are required\n${USAGE}`);
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(args.node!)) throw new ImportError(`--node ${printable(JSON.stringify(args.node))}: expected a Proxmox node name\n${USAGE}`);
    return args as Args;
};

/** What the catalog loader says about the written catalog, for the node the guests run on. */
const catalogCheck = (outDir: string, node: string): string => {
    try {
        const catalog = loadCatalog({ dir: path.resolve(outDir), node });
        return `Catalog check: ${catalog.guests.size} guests load without problems.`;
    } catch (e) {
        if (e instanceof CatalogError) return `Catalog check (what npm run plan will say until this is fixed):\n${e.message}`;
        throw e;
    }
};

export const main = (argv: string[]): number => {
    try {
        const args = parseArgs(argv);
        if (args.help) {
            console.log(HELP);
            return 0;
        }
        const result = importPhoenix(path.resolve(args.from), { node: args.node });
        const outDir = path.resolve(args.out);
        adoptExistingNames(result, outDir);
        const files = renderCatalog(result);
        const { written, unchanged } = writeCatalog(outDir, files, args.force);
        const summary = { outDir, written, unchanged };
        if (args.json) console.log(JSON.stringify(importReportJson(result, summary), null, 2));
        else console.log(`${formatImportReport(result, summary)}\n\n${catalogCheck(outDir, args.node)}`);
        return 0;
    } catch (e) {
        // What the user can fix (bad arguments, bad input, a file system that refuses) is one line and exit code 1;
        // anything else is a bug here and keeps its stack trace.
        if (e instanceof ImportError) {
            console.error(`import-phoenix: ${e.message}`);
            return 1;
        }
        if (isFsError(e)) {
            console.error(`import-phoenix: ${fsErrorMessage(e)}`);
            return 1;
        }
        throw e;
    }
};

if (require.main === module) process.exit(main(process.argv.slice(2)));
