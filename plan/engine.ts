// Runs the real program (index.ts) under the SDK's in-process mock engine and records every registration: type, name,
// parent, dependencies (all and per property), inputs and options. One recorder serves the offline plan and the tests.
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

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
}

export interface Recording {
    registrations: Registration[];
    outputs?: Record<string, unknown>;
    /** The program's failure (a catalog error, bad stack config), if it failed. */
    error?: Error;
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
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
export const isSecretValue = (v: unknown): boolean => typeof v === "object" && v !== null && SECRET_SIG in (v as object);
export const unwrapSecrets = (v: any): any =>
    isSecretValue(v) ? unwrapSecrets(v.value) : Array.isArray(v) ? v.map(unwrapSecrets) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)])) : v;

/** A fake step_ca result, so the CA data flow is exercised offline. */
export const MOCK_CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBmockPhoenixRootCA\n-----END CERTIFICATE-----";
export const MOCK_CA_FINGERPRINT = "8f1c0ffee0d15ea5e0000000000000000000000000000000000000000000cafe";
const MOCK_COMMAND_STDOUT = `${MOCK_CA_PEM}\nPHOENIX_CA_FINGERPRINT=${MOCK_CA_FINGERPRINT}`;

/** State the provider would compute: ids, vmIds, addresses and command output. */
const mockState = (type: string, name: string, inputs: any): { id: string; state: Record<string, unknown> } => {
    switch (type) {
        case "proxmoxve:download/file:File":
            return { id: `${inputs.datastoreId}:${inputs.contentType}/${inputs.fileName}`, state: inputs };
        case "proxmoxve:index/fileLegacy:FileLegacy":
            return { id: `${inputs.datastoreId}:${inputs.contentType}/${inputs.sourceRaw?.fileName ?? name}`, state: inputs };
        case "command:remote:Command":
            return { id: `${name}-id`, state: { ...inputs, stdout: MOCK_COMMAND_STDOUT, stderr: "" } };
        default:
            return { id: `${name}-id`, state: inputs };
    }
};

const PROJECT_ROOT = path.resolve(__dirname, "..");

/** Run the program once under mocks. Not re-entrant: runs in one process follow each other. */
export const recordProgram = async (opts: RunOptions): Promise<Recording> => {
    const project = opts.project ?? "phoenix";
    const registrations: Registration[] = [];
    const inputsByKey = new Map<string, any>();
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                inputsByKey.set(`${args.type}::${args.name}`, args.inputs);
                return mockState(args.type, args.name, args.inputs);
            },
            call: (args) => {
                throw new Error(`unexpected invoke ${args.token} under the mock engine`);
            },
        },
        project,
        opts.stack ?? "dev",
        false,
    );
    let inflight = 0;
    const monitor: any = pulumi.runtime.getMonitor();
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, cb: any) => {
        inflight++;
        const propDeps: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((v: any, k: string) => (propDeps[k] = v.getUrnsList()));
        const rec: Registration = {
            type: req.getType(),
            name: req.getName(),
            urn: "",
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
        };
        registrations.push(rec);
        return register(req, (err: any, resp: any) => {
            if (resp) rec.urn = resp.getUrn();
            rec.inputs = inputsByKey.get(`${rec.type}::${rec.name}`) ?? {};
            inflight--;
            cb(err, resp);
        });
    };

    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.config)) config[k.includes(":") ? k : `${project}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    pulumi.runtime.setAllConfig(config, (opts.secretKeys ?? []).map((k) => (k.includes(":") ? k : `${project}:${k}`)));

    const programPath = require.resolve(opts.program ?? path.join(PROJECT_ROOT, "index"));
    delete require.cache[programPath];
    let outputs: Record<string, unknown> | undefined;
    let error: Error | undefined;
    try {
        outputs = await resolveDeep(require(programPath));
    } catch (e) {
        error = e as Error;
    }
    await settle(() => inflight);
    return { registrations, outputs, error };
};

const settle = async (inflight: () => number): Promise<void> => {
    for (let quiet = 0; quiet < 3; ) {
        await new Promise((r) => setImmediate(r));
        await (pulumi.runtime as any).waitForRPCs?.();
        quiet = inflight() === 0 ? quiet + 1 : 0;
    }
};

const resolveDeep = async (v: any): Promise<any> => {
    if (pulumi.Output.isInstance(v)) return resolveDeep(await new Promise((r) => (v as pulumi.Output<unknown>).apply((x) => (r(x), x))));
    if (Array.isArray(v)) return Promise.all(v.map(resolveDeep));
    if (v && typeof v === "object" && !pulumi.Resource.isInstance(v)) {
        return Object.fromEntries(await Promise.all(Object.entries(v).map(async ([k, x]) => [k, await resolveDeep(x)])));
    }
    return v;
};
