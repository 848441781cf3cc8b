// One `pulumi up` (or `pulumi refresh`) against the twin: the Pulumi engine's step decisions (ENGINE_FACTS in
// rules.ts) over the providers' behaviour (providers.ts), from a prior state to the next one. It answers the recorder's
// registrations in the order the SDK sends them, so the program's later inputs see what the providers stored (an
// unchanged step keeps its old stdout, a clone's disk its source's size), exactly as under the real engine.
import { DEPLOYMENT_STOPPED, type ProviderModel, type Recording, type Registration, isSecretValue, providerUrnOf } from "../engine";
import { ProxmoxNode, NodeError } from "./node";
import { type CommandRun, type ResourceState, type TypeModel, modelFor } from "./providers";
import { COMMAND, type FieldRule, UNMODELLED, rulesFor } from "./rules";
import { type Props, changedPaths, deepEqual, getPath, matchesEnginePath, matchesRule, ruleFor, topKey, unwrapSecrets, withPath } from "./values";

export type Op = "same" | "create" | "update" | "replace" | "delete";

export interface Change {
    urn: string;
    name: string;
    type: string;
    /** A provider's resource (false: a component, which no provider acts on). */
    custom: boolean;
    /** Parent URN (the guest component for a guest's resources). */
    parent: string;
    op: Op;
    /** Input paths that caused the update or replacement (engine keys such as "replaceWith" for a cascade). */
    fields: string[];
    /** The rule behind each field (for the provider's reason and its source). */
    rules: FieldRule[];
    /** The provider restarts the guest to apply the update. */
    reboot: boolean;
    /** Commands: which text ran, with which key (a digest). A replacement can run a delete and a create. */
    runs: CommandRun[];
    /** Differences ignoreChanges holds back (paths the program changed but the engine keeps at their old values). */
    ignored: string[];
    /**
     * The held-back differences the provider could only carry out by replacing the resource (its ForceNew fields under
     * an ignored path, e.g. clone.full): what the program asks for and `pulumi up` silently does not do.
     */
    held: string[];
    /** Deleted before its replacement is created (deleteBeforeReplace, or condemned by another's). */
    deleteFirst: boolean;
    /** The engine or a provider refused: the message `pulumi up` prints. */
    refused?: string;
    /** The operation failed on the node (the message). */
    failed?: string;
}

export interface StackState {
    /** In dependency order, as Pulumi keeps its snapshot. */
    resources: ResourceState[];
    node: ProxmoxNode;
}

export const emptyState = (): StackState => ({ resources: [], node: new ProxmoxNode() });

/**
 * "up": a refusal or failure stops the run (later registrations are not started), as `pulumi up` stops.
 * "plan": a protect refusal is reported and the run goes on (as `pulumi preview` shows every diff), so one preview lists
 * every guest that would be replaced or deleted; a failure on the node still stops it.
 */
export type Mode = "up" | "plan";

export interface RunResult {
    changes: Change[];
    state: StackState;
    /** Why the run stopped: the first refusal or failure, else the program's own error. */
    error?: string;
    warnings: string[];
    recording: Recording;
}

const stateOf = (r: Registration, id: string, inputs: Props, outputs: Props): ResourceState => ({
    urn: r.urn,
    type: r.type,
    name: r.name,
    custom: r.custom,
    parent: r.parent,
    id,
    inputs,
    outputs,
    dependencies: r.dependencies,
    propertyDependencies: r.propertyDependencies,
    protect: r.protect,
    retainOnDelete: r.retainOnDelete,
    deletedWith: r.deletedWith,
    replaceWith: r.replaceWith,
    deleteBeforeReplace: r.deleteBeforeReplace,
    ignoreChanges: r.ignoreChanges,
    replaceOnChanges: r.replaceOnChanges,
    provider: r.provider,
});

/** SG:3074-3095: each ignored path takes the old inputs' value (or goes, if the old inputs had none). */
export const processIgnoreChanges = (inputs: Props, olds: Props, ignore: readonly string[]): Props =>
    ignore.reduce((acc, p) => withPath(acc, p, getPath(olds, p)), inputs);

/**
 * What the program reads of a command (its stdout, and the triggers it last ran with): the state keeps everything, but
 * sending a command's inputs (scripts on stdin) back through the SDK would cost a large plan most of its time.
 */
const commandOutputsRead = (outputs: Props): Props => ({ stdout: outputs.stdout, stderr: outputs.stderr, triggers: outputs.triggers });

const replaceMessage = (urn: string): string =>
    `unable to replace resource "${urn}"\nas it is currently marked for protection. To unprotect the resource, remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\``;
const deleteMessage = (urn: string): string =>
    `resource "${urn}" cannot be deleted\nbecause it is protected. To unprotect the resource, either remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\`, or use the command:\n\`pulumi state unprotect '${urn}'\``;

interface Diff {
    fields: string[];
    rules: FieldRule[];
    replace: boolean;
    update: boolean;
    reboot: boolean;
    error?: string;
}

export class Deployment implements ProviderModel {
    readonly changes: Change[] = [];
    private readonly prior: Map<string, ResourceState>;
    private readonly next = new Map<string, ResourceState>();
    private readonly node: ProxmoxNode;
    /** SG: resources replaced in this run (replaceWith looks here). */
    private readonly replaced = new Set<string>();
    /** SG: resources deleted in this run, ahead of a replacement or at the end (deletedWith looks here). */
    private readonly deleted = new Set<string>();
    /** Dependents deleted ahead of a delete-before-replace, with the keys that condemned them. */
    private readonly condemned = new Map<string, string[]>();
    /** Old resources of create-before-delete replacements: deleted at the end, with their old state. */
    private readonly replacedOld: [ResourceState, Change][] = [];
    private stopped?: string;
    /** A preview goes on past a protect refusal; `pulumi up` would have stopped there. */
    private refusedFirst?: string;

    constructor(prior: StackState, private readonly mode: Mode, private readonly targeted: ReadonlySet<string> = new Set()) {
        this.prior = new Map(prior.resources.map((r) => [r.urn, r]));
        this.node = prior.node.clone();
    }

    register(r: Registration): { id: string; state: Props } {
        if (this.stopped) throw new Error(`${r.name}: ${DEPLOYMENT_STOPPED}`);
        try {
            const { id, state } = this.step(r);
            return { id, state: r.type === COMMAND ? commandOutputsRead(state) : state };
        } catch (e) {
            const message = (e as Error).message;
            if (!(e instanceof NodeError) && !(e instanceof Refusal)) throw e;
            this.stopped = message;
            throw new Error(message);
        }
    }

    private record(r: { urn: string; name: string; type: string; custom: boolean; parent: string }, op: Op, extra: Partial<Change> = {}): Change {
        const c: Change = { urn: r.urn, name: r.name, type: r.type, custom: r.custom, parent: r.parent, op, fields: [], rules: [], reboot: false, runs: [], ignored: [], held: [], deleteFirst: false, ...extra };
        this.changes.push(c);
        return c;
    }

    private step(r: Registration): { id: string; state: Props } {
        const old = this.prior.get(r.urn);
        const model = modelFor(r.type);
        if (!r.custom) {
            this.record(r, old ? "same" : "create");
            this.next.set(r.urn, stateOf(r, "", r.inputs, {}));
            return { id: "", state: {} };
        }
        if (!old) {
            const change = this.record(r, "create");
            const made = this.attempt(change, () => model.create(r.name, r.inputs, this.node));
            if (made.run) change.runs.push(made.run);
            this.next.set(r.urn, stateOf(r, made.id, r.inputs, made.outputs));
            return { id: made.id, state: made.outputs };
        }

        const news = processIgnoreChanges(r.inputs, old.inputs, r.ignoreChanges);
        const ignored = r.ignoreChanges.filter((p) => !deepEqual(getPath(r.inputs, p), getPath(old.inputs, p)));
        const held = heldForReplacement(r, old, ignored);
        // `pulumi up --replace URN` replaces it whatever its diff says.
        const condemnedBy = this.condemned.get(r.urn) ?? (this.targeted.has(r.urn) ? ["--replace"] : undefined);
        const withReplaced = r.replaceWith.filter((u) => this.replaced.has(u));
        const diff = condemnedBy || withReplaced.length > 0 ? undefined : this.diff(model, r, old, news);
        if (diff?.error) {
            const change = this.record(r, "update", { fields: diff.fields, rules: diff.rules, ignored, held, failed: diff.error });
            throw new NodeError(`${change.name}: ${diff.error}`);
        }
        if (condemnedBy || withReplaced.length > 0 || diff!.replace) {
            const fields = condemnedBy ?? (withReplaced.length > 0 ? ["replaceWith"] : diff!.fields);
            return this.replace(r, old, model, { fields, rules: diff?.rules ?? [], ignored, held, alreadyDeleted: this.condemned.has(r.urn) });
        }
        if (diff!.update) {
            const change = this.record(r, "update", { fields: diff!.fields, rules: diff!.rules, reboot: diff!.reboot, ignored, held });
            const done = this.attempt(change, () => model.update(old, news, this.node));
            if (done.run) change.runs.push(done.run);
            this.next.set(r.urn, stateOf(r, old.id, news, done.outputs));
            return { id: old.id, state: done.outputs };
        }
        this.record(r, "same", { ignored, held });
        this.next.set(r.urn, stateOf(r, old.id, news, old.outputs));
        return { id: old.id, state: old.outputs };
    }

    private attempt<T>(change: Change, f: () => T): T {
        try {
            return f();
        } catch (e) {
            if (e instanceof NodeError) change.failed = e.message;
            throw e;
        }
    }

    /** The provider's diff, then the engine's replaceOnChanges. */
    private diff(model: TypeModel, r: Registration, old: ResourceState, news: Props): Diff {
        const against = model.diffAgainst === "state" ? old.outputs : old.inputs;
        let paths = changedPaths(news, against, old.inputs);
        if (model.diffAgainst === "inputs") paths = [...new Set(paths.map(topKey))];
        // The bridge drops the ignored paths from the provider's own diff too (ignoreChangesInDiff), so an ignored input
        // the provider stored otherwise (a clone's disk size read at create) is no diff either.
        else paths = paths.filter((p) => !r.ignoreChanges.some((i) => matchesEnginePath(p, i)));
        const rules = rulesFor(r.type);
        const out: Diff = { fields: [], rules: [], replace: false, update: false, reboot: false };
        for (const path of paths) {
            const rule = ruleFor(rules, path, UNMODELLED);
            let effect: "update" | "replace" | "none" | "error" = rule.change === "none" ? "none" : rule.change === "replace" ? "replace" : "update";
            const now = getPath(unwrapSecrets(news), path);
            const before = getPath(unwrapSecrets(against), path);
            const shrinks = typeof now === "number" && typeof before === "number" && now < before;
            if (rule.change === "grow-update/shrink-replace" && shrinks) effect = "replace";
            if (rule.change === "grow-update/shrink-error" && shrinks) effect = "error";
            if (rule.change === "to-true-update/else-error" && now !== true) effect = "error";
            if (rule.change === "migrate-update/else-replace" && unwrapSecrets(news).migrate !== true) effect = "replace";
            if (r.replaceOnChanges.some((p) => matchesEnginePath(path, p))) effect = "replace";
            if (effect === "none") continue;
            out.fields.push(path);
            out.rules.push(rule);
            if (effect === "error") out.error = `${path}: the provider cannot change ${JSON.stringify(before)} to ${JSON.stringify(now)} (${rule.cite})`;
            if (effect === "replace") out.replace = true;
            if (effect === "update") out.update = true;
            if (effect === "update" && rule.reboot !== "no" && model.running?.(old, this.node)) out.reboot = true;
        }
        return out;
    }

    private replace(r: Registration, old: ResourceState, model: TypeModel, d: { fields: string[]; rules: FieldRule[]; ignored: string[]; held: string[]; alreadyDeleted: boolean }): { id: string; state: Props } {
        const change = this.record(r, "replace", { fields: d.fields, rules: d.rules, ignored: d.ignored, held: d.held, deleteFirst: r.deleteBeforeReplace || d.alreadyDeleted });
        if (r.protect && old.protect) {
            change.refused = replaceMessage(r.urn);
            if (this.mode === "up") throw new Refusal(change.refused);
            this.refusedFirst ??= change.refused;
            // A preview goes on with the old resource in place.
            this.next.set(r.urn, stateOf(r, old.id, old.inputs, old.outputs));
            return { id: old.id, state: old.outputs };
        }
        this.replaced.add(r.urn);
        if (r.deleteBeforeReplace && !d.alreadyDeleted) {
            this.deleteDependents(old);
            this.deleted.add(old.urn);
            const run = this.attempt(change, () => this.providerDelete(old));
            if (run) change.runs.push(run);
        }
        // SG:2003-2022: the replacement is checked against the program's own inputs, ignoreChanges apart.
        const made = this.attempt(change, () => model.create(r.name, r.inputs, this.node));
        if (made.run) change.runs.push(made.run);
        if (!r.deleteBeforeReplace && !d.alreadyDeleted) this.replacedOld.push([old, change]);
        this.next.set(r.urn, stateOf(r, made.id, r.inputs, made.outputs));
        return { id: made.id, state: made.outputs };
    }

    /**
     * SG:2047-2145, 3268-3430: before a delete-before-replace, every (transitive) dependent that the replacement would
     * replace too is deleted, last first: through its provider, deletedWith or replaceWith, or an input that derives
     * from a condemned resource and would replace it while unknown.
     */
    private deleteDependents(root: ResourceState): void {
        const set = new Set([root.urn]);
        const toReplace: [ResourceState, string[]][] = [];
        for (const dep of this.prior.values()) {
            if (dep.urn === root.urn || this.next.has(dep.urn) || this.condemned.has(dep.urn)) continue;
            const keys = requiresReplacement(dep, set);
            if (!keys) continue;
            set.add(dep.urn);
            toReplace.push([dep, keys]);
        }
        for (const [dep] of toReplace) this.deleted.add(dep.urn);
        for (const [dep, keys] of [...toReplace].reverse()) {
            if (dep.protect) {
                throw new Refusal(
                    `unable to replace resource "${dep.urn}" as part of replacing "${root.urn}" as it is currently marked for protection. To unprotect the resource, remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\`, or use the command:\n\`pulumi state unprotect '${dep.urn}'\``,
                );
            }
            this.condemned.set(dep.urn, keys);
            if (dep.custom && !(dep.deletedWith && this.deleted.has(dep.deletedWith)) && !dep.retainOnDelete) modelFor(dep.type).delete(dep, this.node);
        }
    }

    /** After the program: pending deletes of create-before-delete replacements, then what the program no longer declares. */
    finish(recording: Recording): RunResult {
        const kept: ResourceState[] = [];
        // Deletes follow a program that ran to its end: one that failed (a catalog error) deletes nothing.
        if (!this.stopped && !recording.error) {
            for (const [old, change] of this.replacedOld) {
                const run = this.providerDelete(old);
                if (run) change.runs.push(run);
            }
            const gone = [...this.prior.values()].filter((r) => !this.next.has(r.urn) && !this.condemned.has(r.urn));
            gone.forEach((r) => this.deleted.add(r.urn));
            for (const old of gone.reverse()) {
                if (this.stopped) {
                    kept.push(old);
                    continue;
                }
                const change = this.record(old, "delete");
                if (old.protect) {
                    change.refused = deleteMessage(old.urn);
                    kept.push(old);
                    if (this.mode === "up") this.stopped = change.refused;
                    this.refusedFirst ??= change.refused;
                    continue;
                }
                try {
                    const run = this.providerDelete(old);
                    if (run) change.runs.push(run);
                } catch (e) {
                    if (!(e instanceof NodeError)) throw e;
                    change.failed = e.message;
                    this.stopped = e.message;
                    kept.push(old);
                }
            }
            for (const [urn] of this.condemned) {
                const old = this.prior.get(urn)!;
                if (!this.next.has(urn)) this.record(old, "delete", { deleteFirst: true });
            }
        } else {
            for (const r of this.prior.values()) if (!this.next.has(r.urn) && !this.condemned.has(r.urn)) kept.push(r);
        }
        return {
            changes: this.changes,
            state: { resources: dependencyOrder([...this.next.values(), ...kept]), node: this.node },
            error: this.stopped ?? this.refusedFirst ?? recording.error?.message,
            warnings: recording.warnings,
            recording,
        };
    }

    /** STEP:660-699: retainOnDelete and deletedWith skip the provider; otherwise its delete runs with the old state. */
    private providerDelete(old: ResourceState): CommandRun | undefined {
        if (!old.custom || old.retainOnDelete || (old.deletedWith && this.deleted.has(old.deletedWith))) return undefined;
        return modelFor(old.type).delete(old, this.node);
    }
}

/**
 * The leaf paths of the clone block the program ignores whose change the provider could only make by replacing the
 * machine (every clone.* field is ForceNew, §2.1/§3.1): a catalog edit (cloneFrom, fullClone) the engine holds back.
 * The other paths the program ignores differ on purpose (its own steps start a container or make it a template, the
 * resize step grows a clone's disk), so they are not edits waiting for anything.
 */
const HELD_EDITS = ["clone"];
const heldForReplacement = (r: Registration, old: ResourceState, ignored: readonly string[]): string[] => {
    const edits = ignored.filter((p) => HELD_EDITS.some((h) => matchesRule(p, h)));
    if (edits.length === 0) return [];
    const rules = rulesFor(r.type);
    return edits.flatMap((p) => {
        const now = getPath(r.inputs, p);
        const before = getPath(old.inputs, p);
        const leaves = typeof now === "object" && now !== null && typeof before === "object" && before !== null ? changedPaths(now as Props, before as Props, before as Props).map((x) => (x.startsWith("[") ? `${p}${x}` : `${p}.${x}`)) : [p];
        return leaves.filter((leaf) => ruleFor(rules, leaf, UNMODELLED).change === "replace");
    });
};

/** A refusal by the engine (protect): `pulumi up` stops with its message. */
class Refusal extends Error {}

/** SG:3268-3430 requiresReplacement: the keys that condemn `dep` when the resources in `set` are replaced, if any. */
const requiresReplacement = (dep: ResourceState, set: ReadonlySet<string>): string[] | undefined => {
    if (!dep.custom) return undefined;
    if (dep.provider && set.has(providerUrnOf(dep.provider))) return ["provider"];
    if (dep.deletedWith && set.has(dep.deletedWith)) return ["deletedWith"];
    if (dep.replaceWith.some((u) => set.has(u))) return ["replaceWith"];
    const keys = Object.entries(dep.propertyDependencies).filter(([, urns]) => urns.some((u) => set.has(u))).map(([k]) => k);
    const rules = rulesFor(dep.type);
    // The provider's diff with those inputs unknown: a replacement if any rule at or below the key replaces (the safe
    // side: SDKv2 forces a new resource for a wholly unknown block only when the block itself is ForceNew, inferred),
    // or the engine's replaceOnChanges covers it; ignored keys never diff.
    const replacing = keys.filter(
        (k) =>
            !dep.ignoreChanges.some((p) => matchesRule(k, p)) &&
            (rules.some((rule) => rule.change === "replace" && (rule.path === "*" || matchesRule(rule.path, k))) || dep.replaceOnChanges.some((p) => topKey(p) === k)),
    );
    return replacing.length > 0 ? replacing : undefined;
};

/** Stable topological order over dependencies, parents and deletedWith (a snapshot's order). */
const dependencyOrder = (resources: ResourceState[]): ResourceState[] => {
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const out: ResourceState[] = [];
    const state = new Map<string, number>();
    const visit = (r: ResourceState) => {
        if (state.get(r.urn) !== undefined) return;
        state.set(r.urn, 0);
        for (const d of [r.parent, r.deletedWith, providerUrnOf(r.provider), ...r.dependencies]) {
            const dep = d ? byUrn.get(d) : undefined;
            if (dep) visit(dep);
        }
        state.set(r.urn, 1);
        out.push(r);
    };
    resources.forEach(visit);
    return out;
};

/**
 * BRIDGE schema.go:2012-2022 (extractInputsObject): on a refresh every input the state has takes the value read back
 * (nested objects key by key; a key the read no longer has goes), not only the ones that changed in this refresh.
 */
const extractInputs = (olds: Props, outputs: Props): Props => {
    const out: Props = {};
    for (const [k, old] of Object.entries(olds)) {
        if (!(k in outputs)) continue;
        const now = outputs[k];
        const plain = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v) && !isSecretValue(v);
        out[k] = plain(old) && plain(now) ? extractInputs(old, now) : now;
    }
    return out;
};

/** `pulumi refresh`: every resource read back from the node; the read values go into outputs and existing inputs. */
export const refresh = (state: StackState): { state: StackState; changes: Change[] } => {
    const changes: Change[] = [];
    const resources: ResourceState[] = [];
    for (const r of state.resources) {
        if (!r.custom) {
            resources.push(r);
            continue;
        }
        const model = modelFor(r.type);
        const outputs = model.read(r, state.node);
        const base = { urn: r.urn, name: r.name, type: r.type, custom: true, parent: r.parent, rules: [], reboot: false, runs: [], ignored: [], held: [], deleteFirst: false };
        if (!outputs) {
            changes.push({ ...base, op: "delete", fields: [] });
            continue;
        }
        const fields = changedPaths(outputs, r.outputs, r.outputs);
        if (fields.length > 0) changes.push({ ...base, op: "update", fields });
        resources.push({ ...r, inputs: model.diffAgainst === "state" ? extractInputs(r.inputs, outputs) : r.inputs, outputs });
    }
    return { state: { resources, node: state.node }, changes };
};
