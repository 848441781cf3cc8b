// npm run plan -- --since REF: the change a `pulumi up` of the working tree would make to a stack last deployed from
// REF, offline. The program at REF (its own stack file and catalog) runs through the provider twin from an empty
// stack, followed by the refresh the deploy workflow runs after every up: that is the prior state. The working tree's
// program then runs through the twin against it, and every resource's operation, the fields behind it, the steps that
// run again, the guests the provider reboots and the simulated makespan of just those operations are reported.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DEPLOY_PARALLEL, PlanError, type PlanOptions, type PlanResult, planOfRecording, runConfig } from "./plan";
import { type LatencyModel, loadLatencyModel } from "./latency";
import { MACHINE_TYPES, guestOfParent, type PlanStep } from "./recorded";
import { simulate, type SimNode } from "./simulate";
import { PROJECT_ROOT } from "./stackFile";
import { type Change, type RunResult, type StackState, emptyState, refresh, twinUp } from "./twin";
import { COMMAND, VM } from "./twin/rules";
import { CLONE_FIELDS_MOVED_IN_PLACE } from "../components/vm";

export interface ChangeSummary {
    /** Resources a provider acts on (guest components apart), by operation; a refused one under `refused` only. */
    create: number;
    update: number;
    replace: number;
    delete: number;
    refused: number;
    /** Guests whose container or VM would be replaced or deleted (refused or not). */
    guestsReplaced: number[];
    guestsDeleted: number[];
    /** Guests whose catalog edit needs a new container or VM that pulumi up holds back (ignoreChanges) until allowed. */
    guestsHeld: number[];
}

export interface ChangePlan {
    ref: string;
    /** The commit REF names. */
    commit: string;
    /** Whether the working tree's program ran with REF's stack file and catalog (same code), or REF's own code ran. */
    refProgram: "working tree code" | "REF's code";
    /** The plan of the working tree (as the program registers it against the prior state). */
    plan: PlanResult;
    /** Every resource's operation, unchanged ones included, in registration order (deletes last). */
    all: Change[];
    /** The operations other than "same". */
    changes: Change[];
    summary: ChangeSummary;
    /**
     * Containers and VMs (not replaced or deleted anyway) with catalog edits that only a replacement carries out and that
     * the program holds back (ignoreChanges, e.g. cloneFrom or fullClone): `held` lists the fields.
     */
    held: Change[];
    /** Steps (commands) whose script or command runs again. */
    rerun: Change[];
    /** Guests the provider restarts to apply an update. */
    reboots: { guest: number; change: Change }[];
    /** Simulated makespan of only the operations that run: unlimited and at the deploy workflow's --parallel. */
    makespan: { unlimited: number; deploy: number; parallel: number; atParallel: number };
    /** Why `pulumi up` would stop (a refusal or a failure), if it would. */
    error?: string;
    /** What the working tree's program logs as warnings (pulumi up prints them too). */
    warnings: string[];
}

/** Files that make up the program: when REF has the same, the working tree's loaded modules run REF's data. */
const CODE_PATHS = ["index.ts", "components", "catalog", "features", "package-lock.json"];

const git = (args: string[], opts: { input?: Buffer } = {}): Buffer => execFileSync("git", args, { cwd: PROJECT_ROOT, maxBuffer: 1 << 28, stdio: ["pipe", "pipe", "pipe"], input: opts.input });

/** Files under `paths` where the working tree differs from `commit` (untracked ones included). */
const changedSince = (commit: string, paths: string[]): string[] => {
    const lines = (b: Buffer) => b.toString().split("\n").filter(Boolean);
    return [...lines(git(["diff", "--name-only", commit, "--", ...paths])), ...lines(git(["ls-files", "--others", "--exclude-standard", "--", ...paths]))];
};
const under = (file: string, paths: string[]): boolean => paths.some((p) => file === p || file.startsWith(`${p.replace(/\/$/, "")}/`));

const resolveCommit = (ref: string): string => {
    try {
        return git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]).toString().trim();
    } catch {
        throw new PlanError(`--since ${ref}: not a commit in this repository (fetch it first, e.g. git fetch origin main)`, 2);
    }
};

/** REF's tracked files in a temporary directory, with this project's node_modules (one @pulumi/pulumi instance). */
export const materialize = (commit: string): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-since-"));
    execFileSync("tar", ["-x", "-C", dir], { input: git(["archive", "--format=tar", commit]) });
    fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    return dir;
};

/** Unloads REF's modules (and lets the directory go). */
export const forgetTree = (dir: string): void => {
    const prefix = `${fs.realpathSync(dir)}${path.sep}`;
    for (const k of Object.keys(require.cache)) if (k.startsWith(prefix) || k.startsWith(`${dir}${path.sep}`)) delete require.cache[k];
    for (const m of Object.values(require.cache)) if (m) m.children = m.children.filter((c) => !c.filename.startsWith(prefix) && !c.filename.startsWith(`${dir}${path.sep}`));
    fs.rmSync(dir, { recursive: true, force: true });
};

/** The state a deploy from REF leaves: `pulumi up` of REF's program on an empty stack, then `pulumi refresh`. */
const priorState = async (ref: string, commit: string, opts: PlanOptions, strings: Map<string, string>): Promise<{ state: StackState; refProgram: ChangePlan["refProgram"] }> => {
    const cfgHere = runConfig(opts);
    const stack = cfgHere.stack;
    const catalogHere = path.relative(PROJECT_ROOT, path.resolve(PROJECT_ROOT, String(cfgHere.config[`${cfgHere.project}:catalog`] ?? "guests")));
    // A catalog outside the repository (an absolute --catalog) is the same for both runs.
    const data = ["Pulumi.yaml", `Pulumi.${stack}.yaml`, ...(catalogHere.startsWith("..") || path.isAbsolute(catalogHere) ? [] : [catalogHere])];
    const changed = changedSince(commit, [...CODE_PATHS, ...data]);
    const sameCode = !changed.some((f) => under(f, CODE_PATHS));
    if (sameCode && !changed.some((f) => under(f, data))) {
        return { state: await deployed(() => twinUp({ ...cfgHere, strings }), ref), refProgram: "working tree code" };
    }
    const dir = materialize(commit);
    try {
        if (!fs.existsSync(path.join(dir, `Pulumi.${stack}.yaml`))) return { state: emptyState(), refProgram: sameCode ? "working tree code" : "REF's code" };
        const cfg = runConfig(opts, dir);
        const key = `${cfg.project}:catalog`;
        const catalog = String(cfg.config[key] ?? "guests");
        if (sameCode) {
            // The working tree's modules with REF's data: its catalog by absolute path (features are the same).
            const config = { ...cfg.config, [key]: path.isAbsolute(catalog) ? catalog : path.join(dir, catalog) };
            return { state: await deployed(() => twinUp({ ...cfg, config, strings }), ref), refProgram: "working tree code" };
        }
        return { state: await deployed(() => twinUp({ ...cfg, program: path.join(dir, "index"), strings }), ref), refProgram: "REF's code" };
    } finally {
        forgetTree(dir);
    }
};

export const deployed = async (up: () => Promise<RunResult>, ref: string): Promise<StackState> => {
    const first = await up();
    if (first.error) throw new PlanError(`the program at ${ref} does not deploy under the provider twin: ${first.error}`, 1);
    return refresh(first.state).state;
};

const guestOf = (c: Change): number | undefined => guestOfParent(c.parent)?.id;
/** Where a change's guest comes in the plan (guests in plan order, anything else last). */
const guestRanks = (plan: PlanResult): ((c: Change) => number) => {
    const rank = new Map(plan.recorded.guests.map((g, i) => [g.id, i]));
    return (c) => rank.get(guestOf(c)!) ?? plan.recorded.guests.length;
};
const kindOf = (c: Change): "lxc" | "vm" => guestOfParent(c.parent)?.kind ?? "lxc";

/** A VM's update that changes its node: the provider migrates it (qm migrate with its local disks, online: VM:7819-7836). */
export const isMigration = (c: Change): boolean => c.op === "update" && c.type === VM && c.fields.includes("nodeName");

/** Model seconds of one operation: what runs of it (a step that re-runs costs its own figure). */
const opSeconds = (c: Change | undefined, step: PlanStep | undefined, model: LatencyModel): number => {
    if (!c || !step || c.op === "same" || c.refused) return 0;
    const kind = kindOf(c);
    const configure = model[kind].configure;
    switch (c.op) {
        case "create":
            return step.seconds;
        case "replace":
            return step.seconds + (MACHINE_TYPES.has(c.type) ? configure : 0);
        case "delete":
            return step.custom && (MACHINE_TYPES.has(c.type) || c.runs.length > 0) ? configure : 0;
        case "update": {
            if (c.type === COMMAND) return c.runs.some((r) => r.ran === "create") ? step.seconds : 0;
            if (!c.rules.some((r) => r.change !== "state")) return 0;
            // The model has no migration figure: its disks copied to the other node cost what a clone's copy does.
            if (isMigration(c)) return model.vm.clone + configure;
            const reboot = c.reboot ? (kind === "vm" ? model.vm.start_and_wait_agent : model.lxc.start) : 0;
            return configure + reboot;
        }
    }
};

/**
 * The change's makespan: the working tree's graph with each resource costing what its operation runs; deletes at the
 * end. Only the operations that run are simulated, each waiting for the nearest running ones it awaits through the
 * unchanged ones (which take no time): an unchanged stack needs no simulation at all.
 */
const changeMakespan = (plan: PlanResult, all: Change[], parallel: number): ChangePlan["makespan"] => {
    const byName = new Map(all.map((c) => [c.name, c]));
    const steps = new Map(plan.recorded.resources.map((s) => [s.name, s]));
    const seconds = new Map(plan.recorded.resources.map((s) => [s.name, opSeconds(byName.get(s.name), s, plan.model)]));
    const running = plan.recorded.resources.filter((s) => seconds.get(s.name)! > 0);
    const deletes = all.filter((c) => c.op === "delete" && !c.refused && (c.runs.length > 0 || MACHINE_TYPES.has(c.type)));
    if (running.length === 0 && deletes.length === 0) return { unlimited: 0, deploy: 0, parallel, atParallel: 0 };
    // Nearest running resources a resource awaits, through resources that do not run (memoised).
    const nearest = new Map<string, string[]>();
    const through = (name: string): string[] => {
        const known = nearest.get(name);
        if (known) return known;
        nearest.set(name, []);
        const out = new Set<string>();
        for (const a of steps.get(name)?.awaits ?? []) {
            if ((seconds.get(a) ?? 0) > 0) out.add(a);
            else through(a).forEach((x) => out.add(x));
        }
        const list = [...out];
        nearest.set(name, list);
        return list;
    };
    const nodes: SimNode[] = running.map((s) => {
        const c = byName.get(s.name);
        const made = ["create", "replace"].includes(c?.op ?? "");
        return {
            name: s.name,
            seconds: seconds.get(s.name)!,
            awaits: s.awaits.flatMap((a) => ((seconds.get(a) ?? 0) > 0 ? [a] : through(a))),
            lock: s.cloneOf !== undefined && made ? String(s.cloneOf) : undefined,
            // A step that runs in full (made, or its command again) or a migration loads its node as in the plan.
            host: s.host,
            heavy: (s.heavy && (made || (c?.type === COMMAND && c.runs.some((r) => r.ran === "create")))) || (c !== undefined && isMigration(c)),
        };
    });
    const live = nodes.map((n) => n.name);
    for (const d of deletes) nodes.push({ name: `delete ${d.name}`, seconds: plan.model[kindOf(d)].configure, awaits: live });
    const locks = plan.model.limits.concurrent_clones_per_source;
    const at = (n: number) => simulate(nodes, locks, n, plan.model.limits.concurrent_heavy_steps_per_node).makespan;
    const unlimited = at(Infinity);
    return { unlimited, deploy: at(DEPLOY_PARALLEL), parallel, atParallel: Number.isFinite(parallel) ? at(parallel) : unlimited };
};

/**
 * A machine's held-back fields that wait for a replacement: not those a VM carries out in place (its storage and node,
 * which components/vm.ts keeps ignoring even when the guest may be replaced), not on a machine replaced or deleted anyway.
 */
const waitingForReplacement = (c: Change): string[] =>
    !MACHINE_TYPES.has(c.type) || c.op === "replace" || c.op === "delete" ? [] : c.held.filter((f) => c.type !== VM || !(CLONE_FIELDS_MOVED_IN_PLACE as readonly string[]).includes(f));

export const summarize = (changes: Change[], held: Change[] = []): ChangeSummary => {
    const count = (op: Change["op"]) => changes.filter((c) => c.op === op && c.custom && !c.refused).length;
    const guests = (op: Change["op"]) =>
        [...new Set(changes.filter((c) => c.op === op && MACHINE_TYPES.has(c.type)).map(guestOf).filter((g): g is number => g !== undefined))].sort((a, b) => a - b);
    return {
        create: count("create"),
        update: count("update"),
        replace: count("replace"),
        delete: count("delete"),
        refused: changes.filter((c) => c.refused).length,
        guestsReplaced: guests("replace"),
        guestsDeleted: guests("delete"),
        guestsHeld: [...new Set(held.map(guestOf).filter((g): g is number => g !== undefined))].sort((a, b) => a - b),
    };
};

/** The change `pulumi up` of the working tree (with the plan's options) would make to a stack in state `prior`. */
export const changeAgainst = async (
    prior: StackState,
    from: { ref: string; commit: string; refProgram: ChangePlan["refProgram"] },
    opts: PlanOptions = {},
    strings?: Map<string, string>,
): Promise<ChangePlan> => {
    const model = opts.model ?? loadLatencyModel();
    const parallel = opts.parallel ?? Infinity;
    const cfg = runConfig(opts);
    const run = await twinUp({ ...cfg, prior, mode: "plan", strings });
    const rec = run.recording;
    if (rec.error && !run.changes.some((c) => c.refused || c.failed)) throw new PlanError(rec.error.message, 1);
    const plan = planOfRecording(rec, { ...opts, model, stack: cfg.stack, catalog: String(cfg.config[`${cfg.project}:catalog`] ?? "guests") });
    const changes = run.changes.filter((c) => c.op !== "same");
    const rankOf = guestRanks(plan);
    const held = run.changes.map((c) => ({ ...c, held: waitingForReplacement(c) })).filter((c) => c.held.length > 0);
    return {
        ...from,
        plan,
        all: run.changes,
        changes,
        summary: summarize(changes, held),
        held,
        rerun: changes.filter((c) => c.type === COMMAND && c.runs.some((r) => r.ran === "create")).sort((a, b) => rankOf(a) - rankOf(b)),
        reboots: changes.filter((c) => c.reboot).map((c) => ({ guest: guestOf(c)!, change: c })),
        makespan: changeMakespan(plan, run.changes, parallel),
        error: run.error,
        warnings: run.warnings,
    };
};

export const makeChangePlan = async (ref: string, opts: PlanOptions = {}): Promise<ChangePlan> => {
    const commit = resolveCommit(ref);
    // One copy of each script for both runs: the prior state holds the first run's while the second runs.
    const strings = new Map<string, string>();
    const { state, refProgram } = await priorState(ref, commit, opts, strings);
    return changeAgainst(state, { ref, commit, refProgram }, opts, strings);
};
