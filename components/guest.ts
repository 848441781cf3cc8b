// What LxcGuest and VmGuest share: the firewall, and the provisioning chain that runs after the guest is up
// (snapshot, features, application, health check, snapshot). Each step is a child resource named `<id>-<role>`.
//
// Where dependencies attach (the source of the parallelism):
// - a step that consumes another guest's output takes it as an input (trusted_ca takes the CA's root certificate);
// - a feature with `after: [N]` waits for guest N to be ready;
// - the catalog's dependsOn gates the first step that can observe the dependencies (gatedStep): the application or
//   the health check when there is one, otherwise the first feature, otherwise the start; everything after it follows
//   through the chain, nothing earlier waits;
// - `ready` waits for the last steps, which come after the gated step, so it includes every dependency's readiness
//   and dependents can rely on it transitively without listing it;
// - the routes add two waits (catalog/routes.ts RouteWait): Traefik's routes wait for the gateway's application, and
//   the gateway's health check for Traefik and every route's target to be ready.
import { createHash } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import * as command from "@pulumi/command";
import type { GuestSpec, ResolvedStep } from "../catalog/model";
import type { FirewallRuleSpec, HaSpec } from "../catalog/schema";
import { FROZEN_ON_TEMPLATE, plannedTriggers, stepCommand } from "./command";
import type { StackContext } from "./context";
import { envAssignments, retryLoop, secretEnvelope, shq } from "./shell";

export interface CaRoot {
    rootPem: string;
    fingerprint: string;
}

/**
 * step_ca prints the root certificate PEM, then `PHOENIX_CA_FINGERPRINT=<hex>`; anything else is an error. The step
 * receives the CA passwords, so its stdout is a secret in the state; what flows on in plain text is rebuilt from it
 * by construction: the bytes of one certificate block (base64, re-wrapped) whose SHA-256 is the printed fingerprint,
 * and that hex. No other line of the output passes, and a password could only pass if its hash were the fingerprint.
 */
export const parseCaOutput = (stdout: string | undefined, guestId: number): CaRoot => {
    const m = /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+?)\n?-----END CERTIFICATE-----$[\s\S]*?^PHOENIX_CA_FINGERPRINT=([0-9A-Fa-f:]+)\s*$/m.exec(stdout ?? "");
    if (!m) throw new Error(`guest ${guestId}: step_ca printed no root certificate followed by a PHOENIX_CA_FINGERPRINT= line`);
    const base64 = m[1].replace(/\n/g, "");
    if (!/^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(base64)) throw new Error(`guest ${guestId}: step_ca's root certificate is not base64`);
    const fingerprint = m[2].toLowerCase().replace(/:/g, "");
    const der = Buffer.from(base64, "base64");
    if (createHash("sha256").update(der).digest("hex") !== fingerprint) {
        throw new Error(`guest ${guestId}: step_ca's PHOENIX_CA_FINGERPRINT is not the SHA-256 of the certificate it printed`);
    }
    return { rootPem: `-----BEGIN CERTIFICATE-----\n${der.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----\n`, fingerprint };
};

/**
 * Prints step_ca's output again (the root certificate, then its fingerprint) without running the feature: the
 * `update` of the step_ca step, so a connection change keeps the CA's output that trusted_ca steps read.
 */
export const caRootPrintCommand = (steppath = "/etc/step-ca"): string =>
    [
        "set -eu",
        `crt=${shq(`${steppath}/certs/root_ca.crt`)}`,
        `fp=$(step certificate fingerprint "$crt" | tr -d '[:space:]' | tr 'A-F' 'a-f')`,
        'cat "$crt"',
        '[ -z "$(tail -c 1 "$crt")" ] || echo',
        "printf 'PHOENIX_CA_FINGERPRINT=%s\\n' \"$fp\"",
    ].join("; ");

/** A clone starts with its source's firewall file (pct/qm clone copy it); clear it so the catalog's rules are the only ones. */
export const firewallResetScript = (id: number): string =>
    `if [ -f /etc/pve/firewall/${id}.fw ]; then rm -f /etc/pve/firewall/${id}.fw; echo '${id}: cleared the firewall rules inherited from the clone source'; fi`;

/** How a script reaches the inside of a guest. */
export interface GuestShell {
    connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** The command line that runs a script read from stdin, with the given environment assignments. */
    runScript(env: string): string;
    /** The command line that runs one shell command (as root). */
    runCommand(cmd: string): string;
}

export interface GuestArgs<S extends GuestSpec> {
    spec: S;
    ctx: StackContext;
    /** Guests built before this one: its clone source, dependencies and CA provider are among them. */
    built: ReadonlyMap<number, PhoenixGuest>;
    /** The previous clone of the same source: this guest's clone waits for it (clone lanes). */
    lanePredecessor?: number;
    /** Templates whose conversion frees the GPU memory this guest's GPU server needs: the server waits (GPU lanes). */
    gpuLaneWaits?: number[];
}

/** Seconds the provider waits for a download to finish: a ~600 MB cloud image at 0.35 MB/s. */
export const DOWNLOAD_TIMEOUT_SECONDS = 1800;

const uniqueResources = (rs: pulumi.Resource[]): pulumi.Resource[] => [...new Set(rs)];


export abstract class PhoenixGuest extends pulumi.ComponentResource {
    readonly guestId: number;
    readonly node: string;
    readonly ip: string | undefined;
    /** Proxmox VM/CT ID, from the provider. */
    vmId!: pulumi.Output<number>;
    /** The create/clone resource: the next clone in this guest's lane waits for it. */
    machine!: pulumi.CustomResource;
    /** Resolves after this guest's last step and after every dependency is ready. */
    ready!: pulumi.Output<number>;
    /**
     * What a dependent waits for (the resources of ready): this guest's last steps, which come after its gated step
     * and so after its dependencies' readiness. Never the whole transitive closure: the chain implies it, and a list
     * that grows with every layer of dependencies would cost every dependent step.
     */
    readyResources!: pulumi.Resource[];
    /**
     * The guest's last steps (template conversion): its clones wait for them. A dependsOn, not an input: replacing the
     * template (to rebuild it) must not condemn its clones' machines along with it (§1: a delete-before-replace
     * condemns every dependent whose inputs derive from the replaced resource).
     */
    cloneSourceResources!: pulumi.Resource[];
    /** Root certificate and fingerprint, for a guest with the step_ca feature. */
    ca?: pulumi.Output<CaRoot>;
    /** Every step after the guest is up, in order (for the plan and the tests). */
    readonly steps: pulumi.Resource[] = [];
    /** The application step, if any (a route wait names it). */
    applicationStep?: pulumi.Resource;

    protected readonly spec: GuestSpec;
    protected readonly ctx: StackContext;
    private readonly gpuLaneWaits: number[];
    /** The other guests, while this one is being built (see doneBuilding). */
    private built: ReadonlyMap<number, PhoenixGuest> | undefined;
    /** Waits on guests that may be built after this one, settled once every guest is built (see withRouteWait). */
    private readonly afterBuilding: (() => void)[] = [];

    protected constructor(type: string, args: GuestArgs<GuestSpec>, opts?: pulumi.ComponentResourceOptions) {
        // `protect` goes on the machine only: inherited by every step it would block their re-runs (replacements).
        super(type, String(args.spec.id), {}, { ...opts, providers: [args.ctx.provider] });
        this.spec = args.spec;
        this.ctx = args.ctx;
        this.built = args.built;
        this.gpuLaneWaits = args.gpuLaneWaits ?? [];
        this.guestId = args.spec.id;
        this.node = args.spec.node;
        this.ip = args.spec.network.ip === "dhcp" ? undefined : args.spec.network.ip.split("/")[0];
    }

    /**
     * Lets go of the other guests once every guest is built: kept, any one resource still pending would keep every
     * guest of the stack alive until the end of the run, and a large plan spends its time collecting garbage.
     */
    doneBuilding(): void {
        this.afterBuilding.splice(0).forEach((settle) => settle());
        this.built = undefined;
    }

    /**
     * `dependsOn` plus what a route wait names among the guests the stack manages: their application step, or their
     * readiness. The waits go both ways between the gateway and Traefik, so one side is always built later: the list
     * settles once every guest is built (the SDK awaits a promised dependsOn before it registers the step). The
     * catalog refuses a wait that would close a loop (catalog/routeWaits.ts).
     */
    private withRouteWait(dependsOn: pulumi.Resource[], w: NonNullable<ResolvedStep["routeWait"]>): Promise<pulumi.Resource[]> {
        return new Promise<pulumi.Resource[]>((settle) =>
            this.afterBuilding.push(() => {
                const managed = w.guests.filter((id) => this.built!.has(id));
                const applications = managed.flatMap((id) => this.other(id, "route").applicationStep ?? []);
                settle([...dependsOn, ...(w.on === "application" ? applications : this.readinessOf(managed, "route"))]);
            }),
        );
    }

    protected other(id: number, why: string): PhoenixGuest {
        if (!this.built) throw new Error(`guest ${this.guestId}: ${why} guest ${id} looked up after the guests were built`);
        const g = this.built.get(id);
        if (!g) throw new pulumi.ResourceError(`guest ${this.guestId}: ${why} guest ${id} must be built first`, this);
        return g;
    }

    /**
     * Options for everything that lives on or in the machine: replaced when the machine is replaced (a new container
     * or VM with the same ID starts blank, so its firewall and every step must run again), and not deleted one by one
     * when the machine itself is deleted. Resources created before the machine (downloads, host directories) are not bound.
     * Bound resources also wait for the machine: the SDK adds replaceWith to their dependencies, so no step lists the
     * machine again (every declared edge is one test-covered edge; test/lxc.spec.ts and program.spec.ts check these).
     */
    protected machineBound(): pulumi.CustomResourceOptions {
        return this.machine ? { parent: this, replaceWith: [this.machine], deletedWith: this.machine } : { parent: this };
    }

    /**
     * The container or VM is protected (pulumi refuses to replace or delete it) unless the catalog opts out
     * (protect: false) or stack config phoenix:allowReplace lists the guest for this run.
     */
    protected protectMachine(): boolean {
        return this.spec.protect && !this.ctx.settings.allowReplace.has(this.guestId);
    }

    /**
     * Shell prepended to the commands that act on a machine once it may already be a template (none by default);
     * LxcGuest uses it to fail with what to do instead of an obscure pct error.
     */
    protected templateGuard(): string | undefined {
        return undefined;
    }

    /**
     * A file the node downloads (an OS template or a cloud image), once per place (the first guest that needs it
     * downloads it, the others on that node or shared datastore take its id). Same file name on replacement: deleted
     * first. Kept on destroy (other guests may use it later), so a replacement or a re-create finds the old file: replace it.
     * Verified against the catalog's checksum when it has one; without one `pulumi up` (and the plan) warn: a URL
     * such as .../current/... changes content over time, so the same catalog would build different guests. The upload
     * timeout fits a cloud image (~600 MB) on a slow link: the provider gives up after 600 s by default (DF:265-266).
     */
    protected download(
        role: string,
        contentType: "vztmpl" | "import",
        file: { storage: string; url: string; fileName: string; checksum?: string; checksumAlgorithm?: string },
    ): proxmox.download.File {
        return this.ctx.files.once(file.storage, this.node, `${contentType}/${file.fileName}`, () => {
            if (!file.checksum) {
                // A template's copy on another node (nodes:) is the template's, for the user: the catalog names 9000, not 9001.
                const whose = this.spec.copyOf === undefined ? `guest ${this.guestId}` : `guest ${this.spec.copyOf} (its copy ${this.guestId} on ${this.node})`;
                void pulumi.log.warn(
                    `${whose}: ${file.url} is downloaded without a checksum, so nothing verifies it and a changing URL builds different guests from the same catalog; ` +
                        `pin a dated release URL with checksum and checksumAlgorithm (${contentType === "import" ? "image" : "osTemplate"} in the guest file or defaults.yaml)`,
                    this,
                );
            }
            return new proxmox.download.File(
                `${this.guestId}-${role}`,
                {
                    nodeName: this.node,
                    contentType,
                    datastoreId: file.storage,
                    url: file.url,
                    fileName: file.fileName,
                    checksum: file.checksum,
                    checksumAlgorithm: file.checksumAlgorithm,
                    verify: true,
                    uploadTimeout: DOWNLOAD_TIMEOUT_SECONDS,
                    overwrite: false,
                    overwriteUnmanaged: true,
                },
                { parent: this, deleteBeforeReplace: true, retainOnDelete: true },
            );
        });
    }

    /** A command run on the guest's Proxmox node (pct/qm operations the provider has no argument for). */
    protected nodeCommand(
        role: string,
        args: { create: pulumi.Input<string>; delete?: pulumi.Input<string>; triggers?: pulumi.Input<unknown>[] },
        dependsOn: pulumi.Resource[],
        opts: { deleteBeforeReplace?: boolean; guarded?: boolean; ignoreChanges?: string[] } = {},
    ): command.remote.Command {
        const guard = opts.guarded === false ? undefined : this.templateGuard();
        const cmd = stepCommand(
            `${this.guestId}-${role}`,
            {
                connection: this.ctx.nodeConnection(this.node),
                create: guard ? pulumi.output(args.create).apply((c) => `${guard}\n${c}`) : args.create,
                delete: args.delete,
                triggers: args.triggers,
            },
            {
                ...this.machineBound(),
                dependsOn,
                deleteBeforeReplace: opts.deleteBeforeReplace,
                ignoreChanges: [...(opts.ignoreChanges ?? []), ...(this.freeze(role).ignoreChanges ?? [])],
                customTimeouts: { create: "30m", update: "30m", delete: "10m" },
            },
        );
        if (this.freeze(role).ignoreChanges) this.frozen.push({ role, cmd });
        return cmd;
    }

    /** The steps frozen on a template (see FROZEN_ON_TEMPLATE): their stored triggers tell whether it is stale. */
    protected readonly frozen: { role: string; cmd: command.remote.Command }[] = [];

    /** A template's steps before its conversion are frozen once it exists; host preparation and the conversion are not. */
    private freeze(role: string): pulumi.CustomResourceOptions {
        return this.spec.template && this.machine && role !== "template" ? { ignoreChanges: FROZEN_ON_TEMPLATE } : {};
    }

    /**
     * A template built with steps that have changed since stays as built (its steps do not run again); its clones run
     * the current steps themselves. Says so, with the command that rebuilds it, whenever a frozen step's stored
     * triggers differ from the current ones (`pulumi up` and the offline plan print the warning).
     */
    protected warnIfStale(): void {
        const frozen = this.frozen;
        if (frozen.length === 0) return;
        const machine = this.machine;
        const id = this.guestId;
        const allow = this.protectMachine() ? `add ${id} to phoenix:allowReplace (pulumi config set --path 'phoenix:allowReplace[0]' ${id}), then ` : "";
        pulumi
            .all([machine.urn, pulumi.all(frozen.map(({ cmd }) => pulumi.all([cmd.triggers, pulumi.output(plannedTriggers(cmd) ?? [])])))])
            .apply(([urn, pairs]) => {
                // No stored triggers: a first run, or a mock engine that stores none.
                const stale = frozen.filter((_, i) => pairs[i][0] !== undefined && JSON.stringify(pairs[i][0]) !== JSON.stringify(pairs[i][1]));
                if (stale.length === 0) return;
                void pulumi.log.warn(
                    `guest ${id} is a template built with steps that have changed since (${stale.map((c) => c.role).join(", ")}): a template's steps do not run ` +
                        `again, so it stays as built, and its clones run the current steps themselves. To rebuild it: ${allow}pulumi up --replace '${urn}'`,
                    this,
                );
            });
    }

    /**
     * A clone starts with its source's firewall file: cleared once, right after the clone, and never again: from then on
     * the file holds the catalog's options and rules, and clearing it disables the guest's firewall where no refresh
     * sees it (Proxmox reads a missing file as no options, and the provider then keeps the stored ones, FO:236-295).
     * So the step is frozen: its create and triggers keep what it ran with (a new form of either, e.g. a stack deployed
     * before the triggers existed, would replace it and run the create again) and a new connection is not sent either.
     * Only a replacement of the machine (replaceWith) runs it again. Any other change is an Update, which runs its
     * `update` (NOTHING_TO_RERUN), never the create. The options and rules are replaced with it (see firewall()), so
     * even a deliberate `pulumi up --replace` of this step applies them again right after.
     */
    protected firewallReset(): command.remote.Command[] {
        return [this.nodeCommand("fw-reset", { create: firewallResetScript(this.guestId) }, [], { ignoreChanges: ["connection", "create", "triggers"] })];
    }

    /**
     * Firewall options (enabled, default-deny input) and the rules: `implicit` ones first (rules the guest's own
     * provisioning needs, e.g. SSH from the node into a VM), then the catalog's in order; ordering comes from vmId as an input.
     * `reset`: a clone's firewall reset, which they follow and are replaced with.
     */
    protected firewall(scope: "containerId" | "vmId", implicit: FirewallRuleSpec[] = [], reset: pulumi.Resource[] = []): pulumi.Resource[] {
        // Delete before replace: the provider deletes rules by the positions it recorded, so a replacement created
        // first would have its new rules deleted by the old resource's positions (on a cleared file it skips the
        // positions it finds empty, FR:575-605). Replaced with the clone's firewall reset, which clears them.
        const bound = this.machineBound();
        const opts: pulumi.CustomResourceOptions = { ...bound, replaceWith: [...(bound.replaceWith ?? []), ...reset], deleteBeforeReplace: true };
        const fw = this.spec.firewall;
        const ruleList = [...implicit, ...fw.rules];
        const options = new proxmox.firewall.OptionsLegacy(
            `${this.guestId}-fw-options`,
            {
                nodeName: this.node,
                [scope]: this.vmId,
                enabled: fw.enabled,
                inputPolicy: fw.inputPolicy,
                outputPolicy: fw.outputPolicy,
                macfilter: true,
                dhcp: this.spec.network.ip === "dhcp",
            },
            opts,
        );
        if (ruleList.length === 0) return [options];
        const rules = new proxmox.firewall.RulesLegacy(
            `${this.guestId}-fw-rules`,
            { nodeName: this.node, [scope]: this.vmId, rules: ruleList.map((r) => ({ ...r })) },
            opts,
        );
        return [options, rules];
    }

    protected snapshot(tool: "pct" | "qm", name: string, dependsOn: pulumi.Resource[], triggers?: pulumi.Input<unknown>[]): command.remote.Command {
        const id = this.guestId;
        const n = shq(name);
        // Re-taken (delete, then snapshot) whenever the steps before it change: a stale final-form is worse than none.
        return this.nodeCommand(
            `snap-${name}`,
            {
                create: `if ${tool} listsnapshot ${id} | grep -qw -- ${n}; then ${tool} delsnapshot ${id} ${n}; fi; ${tool} snapshot ${id} ${n} --description ${shq("Phoenix lifecycle snapshot")}`,
                delete: `if ${tool} listsnapshot ${id} 2>/dev/null | grep -qw -- ${n}; then ${tool} delsnapshot ${id} ${n}; fi`,
                triggers,
            },
            dependsOn,
            // The old snapshot's delete must run before the new one is taken: it has the same name.
            { deleteBeforeReplace: true },
        );
    }

    /** A features/ script run inside the guest, re-run when the script or its parameters change. */
    protected scriptStep(role: string, shell: GuestShell, step: ResolvedStep, dependsOn: pulumi.Resource[]): command.remote.Command {
        const declared = step.script.params;
        const staticEnv: Record<string, string> = { PHOENIX_GUEST_ID: String(this.guestId), PHOENIX_HOSTNAME: this.spec.name, ...step.env };
        // Only a script that takes the CA's certificate waits for it; CA_URL alone comes from the catalog.
        const consumesCa = step.caFrom !== undefined && (declared.has("CA_ROOT_PEM") || declared.has("CA_FINGERPRINT"));
        const ca = consumesCa ? this.other(step.caFrom!, "CA").ca : undefined;
        if (consumesCa && !ca) throw new pulumi.ResourceError(`guest ${this.guestId}: guest ${step.caFrom} has no step_ca output`, this);
        // A plain string unless another guest's output flows in: no Output to build for most steps.
        const create: pulumi.Input<string> = ca
            ? ca.apply((c) =>
                  shell.runScript(envAssignments({
                      ...staticEnv,
                      ...(declared.has("CA_ROOT_PEM") ? { CA_ROOT_PEM: c.rootPem } : {}),
                      ...(declared.has("CA_FINGERPRINT") ? { CA_FINGERPRINT: c.fingerprint } : {}),
                  })),
              )
            : shell.runScript(envAssignments(staticEnv));
        const secretNames = Object.keys(step.secrets);
        const cmd = stepCommand(
            `${this.guestId}-${role}`,
            {
                connection: shell.connection,
                create,
                // runnable includes features/lib/common.sh: a change to the shared helpers re-runs the step too.
                script: step.script.runnable,
                secrets: secretNames.length === 0 ? undefined : pulumi.all(Object.fromEntries(secretNames.map((name) => [name, this.ctx.settings.secret(step.secrets[name])]))),
                stdin: secretEnvelope,
                // Others read step_ca's stdout: an update prints it again instead of saying nothing.
                update: step.name === "step_ca" ? shell.runCommand(caRootPrintCommand(step.env.STEPPATH)) : undefined,
            },
            {
                ...this.machineBound(),
                dependsOn: step.routeWait ? this.withRouteWait(dependsOn, step.routeWait) : dependsOn,
                customTimeouts: { create: "30m", update: "30m" },
                // A step that receives secrets keeps its output encrypted in the state: a script, a tool or `set -x`
                // could echo one. What is data in it is taken out by a parser that passes nothing else (parseCaOutput).
                ...(secretNames.length > 0 ? { additionalSecretOutputs: ["stdout", "stderr"] } : {}),
                ...this.freeze(role),
            },
        );
        if (this.freeze(role).ignoreChanges) this.frozen.push({ role, cmd });
        return cmd;
    }

    /**
     * Which step the catalog's dependsOn gates: the first one that can observe the dependencies' services. An
     * application or health check talks to them; without either, the first feature runs inside a guest whose
     * dependencies it may use; without features, the start (a VM is created and started in one step, so for a VM
     * the start is its creation). Everything later follows through the chain: readiness, a final-form snapshot and a
     * template conversion (and so every clone) always come after the dependencies, and a declared dependency always
     * orders something.
     */
    protected gatedStep(): "application" | "health" | "feature" | "start" {
        const s = this.spec;
        return s.application ? "application" : s.healthCheck ? "health" : s.features.length > 0 ? "feature" : "start";
    }

    /** The dependencies' readiness when `step` is the gated step, else nothing. */
    protected gateFor(step: ReturnType<PhoenixGuest["gatedStep"]>): pulumi.Resource[] {
        return this.gatedStep() === step ? this.dependencyReadiness() : [];
    }

    /**
     * The chain after the guest is up. `up` are the resources after which the guest is running and reachable (the
     * start already waits for the dependencies when it is the gated step); finish() adds the kind's last step
     * (template conversion) when the catalog asks for it.
     */
    protected provision(tool: "pct" | "qm", shell: GuestShell, up: pulumi.Resource[]): void {
        const spec = this.spec;
        const track = <R extends pulumi.Resource>(r: R): R => (this.steps.push(r), r);

        let prev = up;
        if (spec.lifecycleSnapshots) prev = [track(this.snapshot(tool, "pre-configured", prev))];
        const seen = new Map<string, number>();
        spec.features.forEach((feature, i) => {
            const n = (seen.get(feature.name) ?? 0) + 1;
            seen.set(feature.name, n);
            const role = `feature-${feature.name}${n > 1 ? `-${n}` : ""}`;
            const gate = i === 0 ? this.gateFor("feature") : [];
            // A GPU server that reserves GPU memory starts once the templates in its GPU lane have freed theirs.
            const gpuLane = feature.script.gpuShare ? this.readinessOf(this.gpuLaneWaits, "GPU lane") : [];
            const cmd = track(this.scriptStep(role, shell, feature, [...prev, ...gate, ...this.readinessOf(feature.after, "after"), ...gpuLane]));
            // Only the certificate and its fingerprint leave the secret stdout (see parseCaOutput): plain from here on.
            if (feature.name === "step_ca") this.ca = pulumi.unsecret(cmd.stdout.apply((out) => parseCaOutput(out, this.guestId)));
            prev = [cmd];
        });
        if (spec.application) prev = [(this.applicationStep = track(this.scriptStep("app", shell, spec.application, [...prev, ...this.gateFor("application")])))];
        if (spec.healthCheck) {
            const h = spec.healthCheck;
            const loop = `${retryLoop(h.command, h.retries, h.interval, `guest ${spec.id}`)}\n`;
            const check: ResolvedStep = {
                kind: "application",
                name: "health",
                script: { name: "health", path: "", content: loop, runnable: loop, params: new Map(), listens: [], units: [] },
                env: {},
                secrets: {},
                after: [],
                routeWait: spec.healthRouteWait,
            };
            prev = [track(this.scriptStep("health", shell, check, [...prev, ...this.gateFor("health")]))];
        }
        if (spec.lifecycleSnapshots) {
            const before = this.steps.filter((s): s is command.remote.Command => s instanceof command.remote.Command);
            // Re-taken when an earlier step runs again: only a replacement (a new id) re-runs a step. Those ids are
            // inputs, so it is taken after every earlier step: no dependsOn repeats them.
            prev = [track(this.snapshot(tool, "final-form", [], before.map((c) => c.id)))];
        }
        this.finish(prev);
    }

    /** Override to add the kind's final step (e.g. template conversion). Must call settle() with the last resources. */
    protected finish(prev: pulumi.Resource[]): void {
        this.settle(prev);
    }

    /**
     * Proxmox HA for the guest (catalog `ha`), once its last step (the health check) is done: HA starts, restarts and
     * relocates a guest, which must not happen while it is being provisioned. The HA resource goes before the machine
     * (Proxmox refuses to delete an HA-managed container without purge), so it is replaced with it but not deleted
     * with it. Preferred nodes become a node-affinity rule (Proxmox VE 9) or an HA group (Proxmox VE 8).
     * They are protected as the machine is: the engine deletes them before it, so a removal the machine's protection
     * refuses would otherwise leave the guest running without HA. Dropping `ha` from a protected guest is a removal
     * too: phoenix:allowReplace lists the guest for that run.
     */
    private highAvailability(last: pulumi.Resource[]): void {
        const ha = this.spec.ha;
        if (!ha) return;
        const id = this.guestId;
        const name = `phoenix-${id}`;
        const comment = `Phoenix: ${this.spec.name}`;
        const opts: pulumi.CustomResourceOptions = { parent: this, replaceWith: [this.machine], protect: this.protectMachine() };
        const viaGroup = ha.nodes !== undefined && this.ctx.settings.haAffinity === "groups";
        const group = viaGroup ? new proxmox.Hagroup(`${id}-ha-group`, { group: name, comment, nodes: { ...ha.nodes }, restricted: ha.strict, noFailback: false }, opts) : undefined;
        const resource = new proxmox.Haresource(
            `${id}-ha`,
            {
                resourceId: `${this.spec.kind === "lxc" ? "ct" : "vm"}:${id}`,
                state: ha.state,
                maxRestart: ha.maxRestart,
                maxRelocate: ha.maxRelocate,
                comment,
                ...(group ? { group: group.group } : {}),
            },
            { ...opts, dependsOn: [...last, ...this.haPrerequisites(ha)] },
        );
        if (ha.nodes !== undefined && !viaGroup) {
            // The rule names HA resources, so it follows the resource (Proxmox wants them HA-managed first).
            new proxmox.Harule(`${id}-ha-rule`, { rule: name, type: "node-affinity", comment, resources: [resource.resourceId], nodes: { ...ha.nodes }, strict: ha.strict }, opts);
        }
    }

    /** What must be on the other nodes before HA may start the guest there (none by default). */
    protected haPrerequisites(_ha: HaSpec): pulumi.Resource[] {
        return [];
    }

    /** What waiting for these guests' readiness means: their ready resources. */
    protected readinessOf(ids: number[], why: string): pulumi.Resource[] {
        return uniqueResources(ids.flatMap((d) => this.other(d, why).readyResources));
    }

    protected dependencyReadiness(): pulumi.Resource[] {
        return this.readinessOf(this.spec.dependsOn, "dependency");
    }

    /** `last`: the guest's last steps; they come after its gated step, so after its dependencies' readiness. */
    protected settle(last: pulumi.Resource[]): void {
        this.highAvailability(last);
        this.readyResources = uniqueResources(last);
        // The vmId, resolving only once the given resources are done: waiting on it is waiting on them.
        const after = (rs: pulumi.Resource[]): pulumi.Output<number> =>
            pulumi.all([this.vmId, pulumi.all(rs.map((r) => r.urn))]).apply(([id]) => id);
        this.ready = after(this.readyResources);
        this.cloneSourceResources = last;
        this.registerOutputs({ vmId: this.vmId, ip: this.ip, node: this.node, ready: this.ready });
    }
}
