// npm run plan -- [flags]: what `pulumi up` would do, offline. Runs the real program (index.ts) under the SDK's mock
// engine with a stack's config, then prints the selection, readiness waves, each guest's steps, the dependency graph
// and a simulated `pulumi up` (see plan/plan.ts); with --since REF, the change against a stack deployed from REF
// (plan/since.ts). Exit codes: 0 plan printed, 1 the program failed (catalog or config error, printed as under
// `pulumi up`) or, with --since, pulumi up would stop (the preview is printed), 2 bad flags.
import { catalogArg, DEPLOY_PARALLEL, makePlan, PlanError, type PlanOptions } from "./plan";
import { planJson, renderMermaid, renderText } from "./render";
import { changeJson, renderChangeText } from "./renderSince";
import { runMain } from "./runMain";
import { makeChangePlan } from "./since";

/** Upper bound of --scale: the run under the SDK takes about makespan x scale (585 s x 20 ms = 12 s for the dev stack). */
export const MAX_SCALE = 20;

export const USAGE = `Usage: npm run plan -- [options]

  --stack NAME         stack config Pulumi.<NAME>.yaml (default: dev; secrets get placeholders)
  --guests 900,103     guests to plan instead of the stack's phoenix:guests ("all": the whole catalog)
  --catalog DIR        catalog directory instead of the stack's phoenix:catalog
  --parallel N         at most N resource operations in progress at once (components take none), as pulumi up
                       --parallel N (default: unlimited, as the Pulumi CLI's; the deploy workflow uses ${DEPLOY_PARALLEL}, whose
                       makespan is always shown)
  --fail GUEST:STEP    inject a failure, e.g. 103:feature-step_ca, and show what a default pulumi up then does:
                       steps already running finish, nothing new starts; which guests finish, which are blocked
  --continue-on-error  with --fail: show pulumi up --continue-on-error instead (everything that does not wait on
                       the failure still runs)
  --scale MS           wall milliseconds per model second for the run under the SDK (default: 1; 0 skips it; at
                       most ${MAX_SCALE}: the run takes about makespan x MS, already 12 s for the dev stack at ${MAX_SCALE}, and
                       a larger scale only makes the SDK's own per-step time an even smaller share)
  --since REF          what pulumi up of the working tree would change on a stack deployed from git ref REF
                       (its program, stack file and catalog): per resource create, update, replace or delete
                       with the fields behind it, the steps that run again, the guests the provider reboots,
                       the simulated makespan of the change; containers or VMs replaced or deleted come first
  --mermaid            print only the dependency graph (mermaid)
  --json               print one JSON document instead of text
  --help               this text
`;

export interface Io {
    out: (text: string) => void;
    err: (text: string) => void;
}

interface Flags {
    plan: PlanOptions;
    since?: string;
    format: "text" | "json" | "mermaid";
    help: boolean;
}

class UsageError extends Error {}

const VALUE_FLAGS = new Set(["--stack", "--guests", "--catalog", "--fail", "--scale", "--parallel", "--since"]);

export const parseArgs = (argv: readonly string[]): Flags => {
    const flags: Flags = { plan: { scale: 1 }, format: "text", help: false };
    const formats: string[] = [];
    for (let i = 0; i < argv.length; i++) {
        const [flag, inline] = argv[i].startsWith("--") && argv[i].includes("=") ? [argv[i].slice(0, argv[i].indexOf("=")), argv[i].slice(argv[i].indexOf("=") + 1)] : [argv[i], undefined];
        let value = inline;
        if (VALUE_FLAGS.has(flag) && value === undefined) {
            value = argv[++i];
            if (value === undefined || value.startsWith("--")) throw new UsageError(`${flag} needs a value`);
        } else if (!VALUE_FLAGS.has(flag) && inline !== undefined) throw new UsageError(`${flag} takes no value`);
        switch (flag) {
            case "--stack":
                if (!/^[A-Za-z0-9._-]+$/.test(value!)) throw new UsageError(`--stack ${value}: expected a stack name such as dev`);
                flags.plan.stack = value;
                break;
            case "--guests":
                if (value === "all") flags.plan.guests = "all";
                else if (/^\d+(,\d+)*$/.test(value!)) flags.plan.guests = value!.split(",").map(Number);
                else throw new UsageError(`--guests ${value}: expected guest IDs separated by commas, such as 900,103, or all`);
                break;
            case "--catalog":
                // An empty value would resolve to the current directory (the project root): surely not meant.
                if (value!.trim() === "") throw new UsageError("--catalog needs a directory (got an empty value)");
                flags.plan.catalog = catalogArg(value!);
                break;
            case "--parallel": {
                const n = Number(value);
                if (!/^[1-9]\d*$/.test(value!) || !Number.isSafeInteger(n)) throw new UsageError(`--parallel ${value}: expected a positive integer, such as ${DEPLOY_PARALLEL}`);
                flags.plan.parallel = n;
                break;
            }
            case "--since":
                if (!/^[A-Za-z0-9._/~^@{}-]+$/.test(value!) || value!.startsWith("-")) throw new UsageError(`--since ${value}: expected a git ref such as HEAD, main or origin/main`);
                flags.since = value;
                break;
            case "--continue-on-error":
                flags.plan.continueOnError = true;
                break;
            case "--fail": {
                const m = /^(\d+):([a-z0-9][a-z0-9_-]*)$/.exec(value!);
                if (!m) throw new UsageError(`--fail ${value}: expected GUEST:STEP, such as 103:feature-step_ca`);
                flags.plan.fail = { guest: Number(m[1]), role: m[2] };
                break;
            }
            case "--scale": {
                const n = Number(value);
                if (!/^\d+(\.\d+)?$/.test(value!) || !Number.isFinite(n)) throw new UsageError(`--scale ${value}: expected milliseconds per model second, such as 1 or 0.1`);
                if (n > MAX_SCALE) throw new UsageError(`--scale ${value}: at most ${MAX_SCALE} ms per model second (the run under the SDK would take about makespan x ${value} ms)`);
                flags.plan.scale = n;
                break;
            }
            case "--json":
            case "--mermaid":
                formats.push(flag);
                flags.format = flag === "--json" ? "json" : "mermaid";
                break;
            case "--help":
            case "-h":
                flags.help = true;
                break;
            default:
                throw new UsageError(`unknown option ${argv[i]}`);
        }
    }
    if (formats.length > 1) throw new UsageError(`${formats.join(" and ")}: choose one output format`);
    if (flags.plan.continueOnError && !flags.plan.fail) throw new UsageError("--continue-on-error changes only what --fail reports: give --fail GUEST:STEP too");
    if (flags.since !== undefined) {
        const clash = [flags.plan.fail && "--fail", flags.format === "mermaid" && "--mermaid", argv.some((a) => a.startsWith("--scale")) && "--scale"].filter(Boolean);
        if (clash.length > 0) throw new UsageError(`--since previews a change; ${clash.join(", ")} belong to the plan of a first pulumi up`);
        flags.plan.scale = 0;
    }
    if (flags.format === "mermaid") {
        if (flags.plan.fail) throw new UsageError("--mermaid prints only the graph; --fail reports in the text or --json output");
        flags.plan.scale = 0; // the graph needs no timed run
    }
    return flags;
};

const stdio: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

export const main = async (argv: readonly string[], io: Io = stdio): Promise<number> => {
    let flags: Flags;
    try {
        flags = parseArgs(argv);
    } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        io.err(`error: ${e.message}\n\n${USAGE}`);
        return 2;
    }
    if (flags.help) {
        io.out(USAGE);
        return 0;
    }
    try {
        if (flags.since !== undefined) {
            const change = await makeChangePlan(flags.since, flags.plan);
            io.out(flags.format === "json" ? `${JSON.stringify(changeJson(change), null, 2)}\n` : renderChangeText(change));
            // pulumi up would stop (a refused replacement or deletion, or a step that fails): a check should fail too.
            return change.error ? 1 : 0;
        }
        const plan = await makePlan(flags.plan);
        if (flags.format === "json") io.out(`${JSON.stringify(planJson(plan), null, 2)}\n`);
        else if (flags.format === "mermaid") io.out(`${renderMermaid(plan)}\n`);
        else io.out(renderText(plan));
        return 0;
    } catch (e) {
        // Catalog and config errors read exactly as `pulumi up` shows them; never a stack trace.
        io.err(`error: ${(e as Error).message}\n`);
        return e instanceof PlanError ? e.exitCode : 1;
    }
};

if (require.main === module) runMain(() => main(process.argv.slice(2)));
