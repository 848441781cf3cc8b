// Every command Phoenix runs, on the node or inside a guest. @pulumi/command replaces a command only when its
// `triggers` change; any other input change is an Update, which runs `update` if set, else `create` again (§7 of
// provider-semantics.md, pulumi-command commandController.go:62-82). So each command gets an `update` that re-runs
// nothing, and everything that must re-run the step is in its triggers: a digest of its command line and script, and
// for a step that reads secrets a digest of their values (itself a secret). Then a new SSH key, host or API token only
// updates the stored connection (so later deletes run with the new key), and a rotated secret re-runs exactly the
// steps that read it.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { sha256 } from "./shell";

/** What an Update runs when only the connection (or other bookkeeping) changed. */
export const NOTHING_TO_RERUN = "echo 'phoenix: connection or bookkeeping updated; the step does not run again'";

/** Scripts are shared by many steps: hash each text once. */
const digests = new Map<string, string>();
export const scriptDigest = (text: string): string => {
    let d = digests.get(text);
    if (d === undefined) digests.set(text, (d = sha256(text)));
    return d;
};

export interface StepCommandArgs {
    connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** The command line (environment values quoted in it). */
    create: pulumi.Input<string>;
    /** The script on stdin, if any. */
    script?: string;
    /** Secret values the script reads, by name; stdin then carries them (see `stdin`) and their digest is a trigger. */
    secrets?: pulumi.Output<Record<string, string>>;
    /** stdin built from the script and the secret values (default: the script). */
    stdin?: (script: string, secrets: Record<string, string>) => string;
    delete?: pulumi.Input<string>;
    /** What an Update runs (default NOTHING_TO_RERUN); a step whose stdout others read prints it again. */
    update?: pulumi.Input<string>;
    /** More triggers, e.g. the ids of the steps a snapshot covers. */
    triggers?: pulumi.Input<unknown>[];
}

/** The digest that re-runs the step when its command line or script changes (a plain string unless the line is an Output). */
const runDigest = (create: pulumi.Input<string>, script: string | undefined): pulumi.Input<string> => {
    const of = (c: string) => sha256(c, script === undefined ? "" : scriptDigest(script));
    return typeof create === "string" ? of(create) : pulumi.output(create).apply(of);
};

/** The triggers each command was registered with (its stored `triggers` output says what it last ran with). */
const planned = new WeakMap<command.remote.Command, pulumi.Input<unknown>[]>();
export const plannedTriggers = (cmd: command.remote.Command): pulumi.Input<unknown>[] | undefined => planned.get(cmd);

export const stepCommand = (name: string, args: StepCommandArgs, opts: pulumi.CustomResourceOptions): command.remote.Command => {
    const { secrets, script } = args;
    const stdin =
        secrets && script !== undefined ? secrets.apply((values) => (args.stdin ?? ((s) => s))(script, values)) : script;
    const triggers = [
        runDigest(args.create, script),
        // Derived from secrets, so a secret too: the state keeps it encrypted.
        ...(secrets ? [secrets.apply((values) => sha256(...Object.keys(values).sort().flatMap((k) => [k, values[k]])))] : []),
        ...(args.triggers ?? []),
    ];
    const cmd = new command.remote.Command(
        name,
        { connection: args.connection, create: args.create, stdin, delete: args.delete, update: args.update ?? NOTHING_TO_RERUN, triggers },
        opts,
    );
    planned.set(cmd, triggers);
    return cmd;
};

/**
 * The inputs of a template's steps that never reach the guest once it is a template (ignoreChanges): a changed script
 * would re-run the step on a template, which Proxmox refuses. Its connection still updates (a harmless `update`).
 */
export const FROZEN_ON_TEMPLATE = ["create", "stdin", "triggers"];
