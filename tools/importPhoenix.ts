// npm run import-phoenix -- --from DIR --out DIR [--force] [--json]
// Reads the original Phoenix configuration (phoenix_lxc_configs.json, phoenix_vm_configs.json,
// phoenix_hypervisor_config.json) and writes one catalog file per guest plus defaults.yaml into --out, then prints
// the import report and what the catalog check says about the result. Existing different files are never
// overwritten without --force; no secret value is ever written. Bad arguments, bad input and file system errors end
// with one line on stderr and exit code 1.
import * as path from "path";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import { importPhoenix } from "./phoenix/importer";
import { ImportError, fsErrorMessage, isFsError } from "./phoenix/model";
import { adoptExistingNames, renderCatalog, writeCatalog } from "./phoenix/render";
import { formatImportReport, importReportJson } from "./phoenix/report";

const USAGE = "usage: npm run import-phoenix -- --from <dir with phoenix_*.json> --out <catalog dir> [--force] [--json]";

interface Args {
    from: string;
    out: string;
    force: boolean;
    json: boolean;
}

export const parseArgs = (argv: string[]): Args => {
    const args: Partial<Args> = { force: false, json: false };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--force") args.force = true;
        else if (a === "--json") args.json = true;
        else if ((a === "--from" || a === "--out") && argv[i + 1] !== undefined && !argv[i + 1].startsWith("--")) args[a === "--from" ? "from" : "out"] = argv[++i];
        else throw new ImportError(`unexpected argument ${JSON.stringify(a)}\n${USAGE}`);
    }
    if (!args.from || !args.out) throw new ImportError(`--from and --out are required\n${USAGE}`);
    return args as Args;
};

/** What the catalog loader says about the written catalog (missing scripts are expected for the GPU guests). */
const catalogCheck = (outDir: string): string => {
    try {
        const catalog = loadCatalog({ dir: path.resolve(outDir), node: "import-check" });
        return `Catalog check: ${catalog.guests.size} guests load without problems.`;
    } catch (e) {
        if (e instanceof CatalogError) return `Catalog check (what npm run plan will say until this is fixed):\n${e.message}`;
        throw e;
    }
};

export const main = (argv: string[]): number => {
    try {
        const args = parseArgs(argv);
        const result = importPhoenix(path.resolve(args.from));
        const outDir = path.resolve(args.out);
        adoptExistingNames(result, outDir);
        const files = renderCatalog(result);
        const { written, unchanged } = writeCatalog(outDir, files, args.force);
        const summary = { outDir, written, unchanged };
        if (args.json) console.log(JSON.stringify(importReportJson(result, summary), null, 2));
        else console.log(`${formatImportReport(result, summary)}\n\n${catalogCheck(outDir)}`);
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
