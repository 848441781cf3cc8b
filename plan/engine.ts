// Runs the real program (index.ts) under the SDK's in-process mock engine and records every registration: type, name,
// parent, dependencies (all and per property), inputs and options. One recorder serves the offline plan and the tests.
// For the simulated `pulumi up`, each create can take a modelled time and one can fail; the recording then also says
// when the SDK sent each registration and when it was answered.
import { createHash } from "crypto";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT_ROOT } from "../catalog/load";

export interface Registration {
    type: string;
    name: string;
    urn: string;
    parent: string;
    custom: boolean;
    /** URNs this resource waits for (explicit dependsOn plus implicit input dependencies). */
    dependencies: string[];
    /** Per input property: the URNs whose outputs flow into it. */
    propertyDependencies: Record<string, string[]>;
    /** Inputs as the provider receives them (secrets wrapped; see isSecretValue / unwrapSecrets). */
    inputs: Record<string, any>;
    provider: string;
    deleteBeforeReplace: boolean;
    protect: boolean;
    retainOnDelete: boolean;
    ignoreChanges: string[];
    replaceOnChanges: string[];
    additionalSecretOutputs: string[];
    /** URNs whose replacement replaces this resource too. */
    replaceWith: string[];
    deletedWith: string;
    /** Which of protect, retainOnDelete and deleteBeforeReplace the program set (false included), as the SDK sends them. */
    explicit: ("protect" | "retainOnDelete" | "deleteBeforeReplace")[];
    /** customTimeouts, when set. */
    customTimeouts?: { create: string; update: string; delete: string };
    /** A component's providers by package: provider references ("<urn>::<id>"). */
    providers?: Record<string, string>;
    /** performance.now() when the SDK sent the registration, i.e. once everything it awaits had resolved. */
    startedAt?: number;
    /** performance.now() when the (mock) engine answered: the resource exists, dependents may proceed. */
    finishedAt?: number;
    /** The create's error, for a resource that failed (an injected failure). */
    failed?: string;
}

export interface Recording {
    registrations: Registration[];
    outputs?: Record<string, unknown>;
    /** The program's failure (a catalog error, bad stack config), if it failed. */
    error?: Error;
    /** What the program logged with pulumi.log.warn (pulumi up shows the same lines). */
    warnings: string[];
    /** What it logged with pulumi.log.info (pulumi up shows them among the diagnostics too). */
    notices: string[];
}

/**
 * Stands in for the providers: answers each registration (inputs and options) with the id and state a provider would
 * store. The default answers by echoing inputs; the provider twin (plan/twin) answers as the real providers do.
 */
export interface ProviderModel {
    register(r: Registration): { id: string; state: Record<string, unknown> } | Promise<{ id: string; state: Record<string, unknown> }>;
}

export interface RunOptions {
    /** Stack config without the namespace or with it: { guests: [103], "phoenix:node": "pve" }. */
    config: Record<string, unknown>;
    /** Keys of config that are secrets. */
    secretKeys?: string[];
    stack?: string;
    project?: string;
    /** Program module to load (default: index.ts at the project root). */
    program?: string;
    /** Wall milliseconds each resource's create takes (the simulated `pulumi up`). Default: every create answers at once. */
    latency?: (r: MockedResource) => number;
    /** Keep the SDK's debugging aids on while the program runs (default: off, they cost a third of the time; see switchOffSdkDebugAids). */
    sdkDebugAids?: boolean;
    /** Resources whose create fails, after its latency (an injected failure). The run still settles and returns. */
    fail?: (r: MockedResource) => boolean;
    /** Answers to the program's provider queries by token, over the defaults (MOCK_INVOKES). */
    invokes?: Record<string, (inputs: Record<string, any>) => Record<string, unknown>>;
    /** Answers registrations instead of the echo (latency and fail are then not used). */
    provider?: ProviderModel;
    /** Large input strings seen before (see interned): runs that share it keep one copy of each script between them. */
    strings?: Map<string, string>;
}

/**
 * What the mock engine answers when the program asks Proxmox: with no Proxmox to ask, every container is where the
 * catalog puts it (none exists yet).
 */
export const MOCK_INVOKES: Record<string, (inputs: Record<string, any>) => Record<string, unknown>> = {
    "proxmoxve:index/getContainersLegacy:getContainersLegacy": () => ({ id: "containers", containers: [] }),
};

/** What the mock engine knows about a resource when asked to create it. */
export interface MockedResource {
    type: string;
    name: string;
    /** Parent URN ("" for a top-level resource). */
    parent: string;
    custom: boolean;
    inputs: Record<string, any>;
}

/** Marks the error of an injected failure, so the rejections it causes downstream are recognised as expected. */
export const INJECTED_FAILURE = "injected failure";
/** Marks the registrations a provider model refuses after an earlier failure stopped the deployment (as pulumi up stops). */
export const DEPLOYMENT_STOPPED = "not started: the deployment stopped at an earlier failure";
const expectedRejection = (e: Error): boolean => e.message.includes(INJECTED_FAILURE) || e.message.includes(DEPLOYMENT_STOPPED);

/** The URN a provider reference ("<urn>::<id>", as Registration.provider holds it) names; "" for none. */
export const providerUrnOf = (ref: string): string => (ref ? ref.slice(0, ref.lastIndexOf("::")) : "");

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
export const isSecretValue = (v: unknown): boolean => typeof v === "object" && v !== null && SECRET_SIG in (v as object);
export const unwrapSecrets = (v: any): any =>
    isSecretValue(v) ? unwrapSecrets(v.value) : Array.isArray(v) ? v.map(unwrapSecrets) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)])) : v;

/** A fake step_ca result, so the CA data flow is exercised offline: a PEM block and the SHA-256 of its bytes, as step prints. */
const MOCK_CA_DER = Buffer.from("Phoenix mock root CA: stands in for the certificate step_ca prints on a real node.");
export const MOCK_CA_PEM = `-----BEGIN CERTIFICATE-----\n${MOCK_CA_DER.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----`;
export const MOCK_CA_FINGERPRINT = createHash("sha256").update(MOCK_CA_DER).digest("hex");
const MOCK_COMMAND_STDOUT = `${MOCK_CA_PEM}\nPHOENIX_CA_FINGERPRINT=${MOCK_CA_FINGERPRINT}`;

/** State the provider would compute: ids, vmIds, addresses and command output. */
const mockState = (type: string, name: string, inputs: any): { id: string; state: Record<string, unknown> } => {
    switch (type) {
        case "proxmoxve:download/file:File":
            return { id: `${inputs.datastoreId}:${inputs.contentType}/${inputs.fileName}`, state: inputs };
        case "proxmoxve:index/fileLegacy:FileLegacy":
            return { id: `${inputs.datastoreId}:${inputs.contentType}/${inputs.sourceRaw?.fileName ?? name}`, state: inputs };
        case "command:remote:Command":
            // Only what a command computes: echoing its inputs (scripts on stdin) back through the engine costs
            // serialization and nothing reads them.
            return { id: `${name}-id`, state: { stdout: MOCK_COMMAND_STDOUT, stderr: "" } };
        default:
            return { id: `${name}-id`, state: inputs };
    }
};


/**
 * Large input strings (scripts on stdin) arrive as a fresh copy per resource; keeping one copy of each keeps a
 * 1000-guest recording's heap, and so its garbage collection, from growing with every step.
 */
const interned = (strings: Map<string, string>, inputs: Record<string, any>): Record<string, any> => {
    for (const [k, v] of Object.entries(inputs)) {
        if (typeof v !== "string" || v.length < 1024) continue;
        const seen = strings.get(v);
        if (seen === undefined) strings.set(v, v);
        else inputs[k] = seen;
    }
    return inputs;
};

/** Run the program once under mocks. Not re-entrant: runs in one process follow each other. */
export const recordProgram = async (opts: RunOptions): Promise<Recording> => {
    const project = opts.project ?? "phoenix";
    const registrations: Registration[] = [];
    const inputsByKey = new Map<string, any>();
    const bigStrings = opts.strings ?? new Map<string, string>();
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                inputsByKey.set(`${args.type}::${args.name}`, interned(bigStrings, args.inputs));
                if (opts.provider) return opts.provider.register({ ...sending!, inputs: args.inputs });
                const r: MockedResource = { type: args.type, name: args.name, parent: sending?.parent ?? "", custom: args.custom ?? false, inputs: args.inputs };
                const failing = opts.fail?.(r) ?? false;
                const ms = opts.latency?.(r) ?? 0;
                if (ms <= 0 && !failing) return mockState(args.type, args.name, args.inputs);
                return new Promise((resolve, reject) =>
                    setTimeout(() => (failing ? reject(new Error(`${INJECTED_FAILURE} of ${args.name}`)) : resolve(mockState(args.type, args.name, args.inputs))), ms),
                );
            },
            call: (args) => {
                const answer = opts.invokes?.[args.token] ?? MOCK_INVOKES[args.token];
                if (!answer) throw new Error(`unexpected invoke ${args.token} under the mock engine`);
                return answer(args.inputs);
            },
        },
        project,
        opts.stack ?? "dev",
        false,
    );
    let inflight = 0;
    let failures = 0;
    // Resolves at the first failed registration or program error (and never in a run without one).
    let signalBreak = () => {};
    const firstBreak = new Promise<void>((r) => (signalBreak = r));
    // The registration being sent: MockMonitor calls newResource synchronously from registerResource, and the mock
    // arguments carry no parent, so the wrapper below hands it over here.
    let sending: Registration | undefined;
    const monitor: any = pulumi.runtime.getMonitor();
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, cb: any) => {
        inflight++;
        const propDeps: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((v: any, k: string) => (propDeps[k] = v.getUrnsList()));
        const rec: Registration = {
            type: req.getType(),
            name: req.getName(),
            // What the mock monitor answers with; known before it answers, for a provider model.
            urn: monitor.newUrn(req.getParent(), req.getType(), req.getName()),
            parent: req.getParent(),
            custom: req.getCustom(),
            dependencies: req.getDependenciesList(),
            propertyDependencies: propDeps,
            inputs: {},
            provider: req.getProvider(),
            deleteBeforeReplace: req.getDeletebeforereplace(),
            protect: req.getProtect(),
            retainOnDelete: req.hasRetainondelete() ? req.getRetainondelete() : false,
            ignoreChanges: req.getIgnorechangesList(),
            replaceOnChanges: req.getReplaceonchangesList(),
            additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
            replaceWith: req.getReplaceWithList(),
            deletedWith: req.getDeletedwith(),
            explicit: [
                ...(req.hasProtect() ? (["protect"] as const) : []),
                ...(req.hasRetainondelete() ? (["retainOnDelete"] as const) : []),
                ...(req.getDeletebeforereplacedefined() ? (["deleteBeforeReplace"] as const) : []),
            ],
            ...(req.hasCustomtimeouts() ? { customTimeouts: { create: req.getCustomtimeouts().getCreate(), update: req.getCustomtimeouts().getUpdate(), delete: req.getCustomtimeouts().getDelete() } } : {}),
            ...(req.getProvidersMap().getLength() > 0 ? { providers: Object.fromEntries(req.getProvidersMap().toObject()) } : {}),
            startedAt: performance.now(),
        };
        registrations.push(rec);
        sending = rec;
        const sent = register(req, (err: any, resp: any) => {
            rec.finishedAt = performance.now();
            if (resp) rec.urn = resp.getUrn();
            if (err) {
                failures++;
                signalBreak();
                rec.failed = String(err.message ?? err);
                rec.urn = monitor.newUrn(rec.parent, rec.type, rec.name);
            }
            rec.inputs = inputsByKey.get(`${rec.type}::${rec.name}`) ?? {};
            inflight--;
            cb(err, resp);
        });
        sending = undefined;
        return sent;
    };

    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.config)) config[k.includes(":") ? k : `${project}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    pulumi.runtime.setAllConfig(config, (opts.secretKeys ?? []).map((k) => (k.includes(":") ? k : `${project}:${k}`)));

    // As under `pulumi up`, an error the program raises asynchronously (a RunError thrown inside an apply) fails the
    // run instead of crashing the process. The SDK also leaves a failed registration's rejection unhandled on
    // purpose; with an injected failure that, and everything waiting on it, is the expected outcome.
    const rejections: Error[] = [];
    const onRejection = (reason: unknown) => {
        const e = reason instanceof Error ? reason : new Error(String(reason));
        if (!expectedRejection(e)) rejections.push(e);
        signalBreak();
    };
    process.on("unhandledRejection", onRejection);

    const restoreDebugAids = opts.sdkDebugAids ? () => {} : switchOffSdkDebugAids();
    const warnings: string[] = [];
    const notices: string[] = [];
    const restoreLog = captureLog(warnings, notices);
    const programPath = require.resolve(opts.program ?? path.join(PROJECT_ROOT, "index"));
    let outputs: Record<string, unknown> | undefined;
    let error: Error | undefined;
    // After a failure, whatever waits on it never registers and outputs that need it never resolve: the run is over
    // once something failed and nothing has been in flight for a few event-loop turns.
    const broken = () => rejections.length > 0 || failures > 0;
    const stalled = () => quiet(() => inflight === 0 && broken());
    let racing = true;
    const giveUp = firstBreak.then(() => quiet(() => !racing || inflight === 0)).then(() => racing && blockedOutputs());
    try {
        // Unloaded as soon as it has run (the next run loads it again): the exports are the recorder's alone (see
        // releasingResolve), and nothing keeps this run alive once it is over.
        let exported: unknown;
        try {
            exported = require(programPath);
        } finally {
            forgetModule(programPath);
        }
        outputs = await Promise.race([releasingResolve(exported), giveUp]);
    } catch (e) {
        error = e as Error;
    } finally {
        racing = false; // stops the watch above
    }
    if (!broken()) {
        await settle(() => inflight);
    } else {
        await stalled();
        // Whatever waits on the failure stays pending for good: that is the result, not a leak for the SDK to report
        // at exit (it would print a warning and set exit code 1).
        require("@pulumi/pulumi/runtime/debuggable").leakedPromises();
    }
    await new Promise((r) => setImmediate(r));
    process.off("unhandledRejection", onRejection);
    restoreDebugAids();
    restoreLog();
    // The program's own error comes first: the injected failure only explains what it blocked.
    return { registrations, outputs, error: rejections[0] ?? error, warnings, notices };
};

const firstLineOnly = (err: Error): string => Error.prototype.toString.call(err);

/**
 * pulumi.log.warn and info without an engine print to the console; during a recording they are collected instead, so
 * the plan can show what `pulumi up` would print. Returns the function that puts the logger back.
 */
const captureLog = (warnings: string[], notices: string[]): (() => void) => {
    const log = pulumi.log as { warn: (msg: string) => Promise<void>; info: (msg: string) => Promise<void> };
    const { warn, info } = log;
    const into = (list: string[]) => (msg: string) => {
        list.push(msg);
        return Promise.resolve();
    };
    log.warn = into(warnings);
    log.info = into(notices);
    return () => {
        log.warn = warn;
        log.info = info;
    };
};

/**
 * The SDK's debugging aids, for a real deployment's diagnostics, cost a recording most of its time and nothing under
 * the mock engine reads them:
 * - every promise it tracks is wrapped for leak detection at exit (three property definitions, a stack trace and two
 *   extra promises each, dozens per resource); the recorder detects a run that stops settling itself;
 * - every resource parses a full stack trace (source-mapped under ts-node) for its source position, which only the
 *   service's UI shows.
 * While the program runs these are off, and an error's stack is its first line (the plan prints messages, never
 * stacks). Returns the function that puts everything back.
 */
const switchOffSdkDebugAids = (): (() => void) => {
    const debuggable = require("@pulumi/pulumi/runtime/debuggable") as { debuggablePromise: <T>(p: Promise<T>, ctx: unknown) => Promise<T> };
    const { debuggablePromise } = debuggable;
    const { callsites } = pulumi.Resource as unknown as { callsites: () => unknown[] };
    const { stackTraceLimit, prepareStackTrace } = Error;
    debuggable.debuggablePromise = (p) => p;
    Object.assign(pulumi.Resource, { callsites: () => [] });
    Object.assign(Error, { stackTraceLimit: 0, prepareStackTrace: firstLineOnly });
    return () => {
        debuggable.debuggablePromise = debuggablePromise;
        Object.assign(pulumi.Resource, { callsites });
        Object.assign(Error, { stackTraceLimit, prepareStackTrace });
    };
};

/**
 * Unloads a module so the next require runs it again. Dropping it from require.cache is not enough: its parent
 * still lists it among its children and the modules it loaded first still name it as their parent, and through
 * either it keeps every resource of the run it registered.
 */
const forgetModule = (file: string): void => {
    delete require.cache[file];
    // By id, not identity: a program that threw while loading (a catalog error) is already out of the cache, but
    // the modules it loaded first still name it.
    for (const m of Object.values(require.cache)) {
        if (!m) continue;
        const i = m.children.findIndex((c) => c.id === file);
        if (i >= 0) m.children.splice(i, 1);
        if (m.parent?.id === file) m.parent = undefined;
    }
};

const blockedOutputs = (): never => {
    throw new Error(`the program's outputs wait on resources blocked by a failure`);
};

const quiet = async (done: () => boolean): Promise<void> => {
    for (let n = 0; n < 3; ) {
        await new Promise((r) => setImmediate(r));
        n = done() ? n + 1 : 0;
    }
};

const settle = async (inflight: () => number): Promise<void> => {
    for (let quiet = 0; quiet < 3; ) {
        await new Promise((r) => setImmediate(r));
        await (pulumi.runtime as any).waitForRPCs?.();
        quiet = inflight() === 0 ? quiet + 1 : 0;
    }
};

/**
 * The program's outputs with every Output resolved. Each value is let go of as soon as it is resolved, so a guest whose
 * outputs are in and that nothing pending waits for can be collected while the run goes on, instead of the whole
 * stack staying alive until its last resource.
 */
const releasingResolve = async (v: any): Promise<any> => {
    if (pulumi.Output.isInstance(v)) return releasingResolve(await new Promise((r) => (v as pulumi.Output<unknown>).apply((x) => (r(x), x))));
    if (Array.isArray(v)) return Promise.all(v.map(releasingResolve));
    if (v && typeof v === "object" && !pulumi.Resource.isInstance(v)) {
        const out: Record<string, unknown> = Object.fromEntries(Object.keys(v).map((k) => [k, undefined])); // keys in order
        await Promise.all(
            Object.keys(v).map(async (k) => {
                out[k] = await releasingResolve(v[k]);
                v[k] = undefined;
            }),
        );
        return out;
    }
    return v;
};
