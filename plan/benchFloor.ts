// The benchmark's floors, run by the same recorder as the real program:
// - bare (phoenix:floorResources = N): one component and N - 1 custom resources of a fake type without inputs, the
//   SDK's own cost per registration;
// - replay (phoenix:floorReplay = file): the resources a plan recorded, same types, names, inputs, parents and
//   dependencies, resource options (provider, protect, ignoreChanges, replaceWith, deletedWith, ...) and secret
//   inputs (as secret Outputs), registered in a flat loop without the program (no catalog, no outputs flowing between
//   resources).
// A plan's time above the replay is the program's own work; the replay above the bare floor is what the real
// resource types cost the SDK (each output property is an Output with its own promises).
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import * as command from "@pulumi/command";
import { isSecretValue, unwrapSecrets } from "./engine";

export interface ReplayResource {
    type: string;
    name: string;
    custom: boolean;
    parent?: string;
    dependsOn: string[];
    /** As recorded: secret values wrapped (isSecretValue); the replay passes them as secret Outputs, as the program does. */
    inputs: Record<string, unknown>;
    /** Per input property, the resources (by name) whose outputs flow into it. */
    propertyDependencies: Record<string, string[]>;
    /** The resource options the program registered it with; resources by name. */
    options: {
        provider?: string;
        /** A component's providers, by name. */
        providers: string[];
        /** protect, retainOnDelete and deleteBeforeReplace, each only if the program set it (an unset one is not sent as false). */
        set: { protect?: boolean; retainOnDelete?: boolean; deleteBeforeReplace?: boolean };
        ignoreChanges: string[];
        replaceOnChanges: string[];
        additionalSecretOutputs: string[];
        replaceWith: string[];
        deletedWith?: string;
        customTimeouts?: pulumi.CustomTimeouts;
    };
}

/** Recorded inputs as the program handed them over: each secret a secret Output. */
const withSecrets = (v: unknown): unknown =>
    isSecretValue(v)
        ? pulumi.secret(unwrapSecrets(v))
        : Array.isArray(v)
          ? v.map(withSecrets)
          : v && typeof v === "object"
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withSecrets(x)]))
            : v;

class Bare extends pulumi.CustomResource {
    constructor(name: string, opts: pulumi.CustomResourceOptions) {
        super("phoenix:bench:Bare", name, {}, opts);
    }
}

class Component extends pulumi.ComponentResource {
    constructor(type: string, name: string, opts: pulumi.ComponentResourceOptions) {
        super(type, name, {}, opts);
        this.registerOutputs({});
    }
}

type Ctor = new (name: string, args: any, opts: pulumi.CustomResourceOptions) => pulumi.CustomResource;
const CLASSES: Ctor[] = [
    proxmox.ContainerLegacy, proxmox.VmLegacy, proxmox.FileLegacy, proxmox.download.File, proxmox.firewall.OptionsLegacy, proxmox.firewall.RulesLegacy,
    proxmox.Haresource, proxmox.Harule, proxmox.Hagroup, command.remote.Command,
];
const byType = new Map<string, Ctor>(CLASSES.map((c) => [(c as unknown as { __pulumiType: string }).__pulumiType, c]));

/**
 * Options a class adds to every resource of its own (its constructor merges them in, so passing them again would list
 * them twice): @pulumi/command remote/command.js 130-133, @muhlba91/pulumi-proxmoxve provider.js 77.
 */
const CLASS_OPTIONS: Record<string, { additionalSecretOutputs?: string[]; replaceOnChanges?: string[] }> = {
    "command:remote:Command": { additionalSecretOutputs: ["connection"], replaceOnChanges: ["triggers[*]"] },
    "pulumi:providers:proxmoxve": { additionalSecretOutputs: ["apiToken", "authTicket", "csrfPreventionToken", "password"] },
};
const beyondClass = (list: string[], own: string[] = []): string[] => {
    const left = [...own];
    return list.filter((x) => {
        const i = left.indexOf(x);
        if (i < 0) return true;
        left.splice(i, 1);
        return false;
    });
};

/**
 * Each input property whose value the program computed from other resources' outputs is handed over as an Output of
 * those resources (as the program's own Outputs are), so the SDK records the same property dependencies.
 */
const withDependencies = (inputs: Record<string, any>, deps: Record<string, string[]>, made: ReadonlyMap<string, pulumi.Resource>): Record<string, any> =>
    Object.fromEntries(
        Object.entries(inputs).map(([k, v]) => {
            const from = (deps[k] ?? []).map((d) => made.get(d)).filter((d): d is pulumi.Resource => d !== undefined);
            return [k, from.length === 0 ? v : pulumi.all([pulumi.output(v), ...from.map((d) => d.urn)]).apply(([value]) => value)];
        }),
    );

/** The provider inputs its class JSON-encodes (provider.js 65-72): recorded encoded, so decoded for the class again. */
const ENCODED_PROVIDER_INPUTS = new Set(["insecure", "randomVmIdEnd", "randomVmIdStart", "randomVmIds", "ssh"]);
const providerArgs = (inputs: Record<string, any>): Record<string, any> =>
    Object.fromEntries(
        Object.entries(inputs).map(([k, v]) => {
            if (!ENCODED_PROVIDER_INPUTS.has(k)) return [k, v];
            const decode = (x: unknown) => (typeof x === "string" ? JSON.parse(x) : x);
            return [k, pulumi.Output.isInstance(v) ? v.apply(decode) : decode(v)];
        }),
    );

const replay = (resources: ReplayResource[]): void => {
    const made = new Map<string, pulumi.Resource>();
    const named = (names: string[]) => names.map((d) => made.get(d)!).filter(Boolean);
    for (const r of resources) {
        const o = r.options;
        const opts: pulumi.CustomResourceOptions = {
            parent: r.parent ? made.get(r.parent) : undefined,
            dependsOn: named(r.dependsOn),
            provider: o.provider ? (made.get(o.provider) as pulumi.ProviderResource) : undefined,
            ...o.set,
            customTimeouts: o.customTimeouts,
            ignoreChanges: o.ignoreChanges,
            replaceOnChanges: beyondClass(o.replaceOnChanges, CLASS_OPTIONS[r.type]?.replaceOnChanges),
            additionalSecretOutputs: beyondClass(o.additionalSecretOutputs, CLASS_OPTIONS[r.type]?.additionalSecretOutputs),
            replaceWith: named(o.replaceWith),
            deletedWith: o.deletedWith ? made.get(o.deletedWith) : undefined,
        };
        const inputs = withDependencies(withSecrets(r.inputs) as Record<string, any>, r.propertyDependencies, made);
        const providers = named(o.providers) as pulumi.ProviderResource[];
        if (!r.custom) made.set(r.name, new Component(r.type, r.name, { parent: opts.parent, dependsOn: opts.dependsOn, ...(providers.length > 0 ? { providers } : {}) }));
        else if (r.type === "pulumi:providers:proxmoxve") made.set(r.name, new proxmox.Provider(r.name, providerArgs(inputs), opts));
        else {
            const ctor = byType.get(r.type);
            if (!ctor) throw new Error(`replay: no class for ${r.type}`);
            made.set(r.name, new ctor(r.name, inputs, opts));
        }
    }
};

const cfg = new pulumi.Config("phoenix");
const file = cfg.get("floorReplay");
if (file) replay(JSON.parse(fs.readFileSync(file, "utf8")) as ReplayResource[]);
else {
    const floor = new Component("phoenix:bench:Floor", "floor", {});
    for (let i = 0; i < cfg.requireNumber("floorResources") - 1; i++) new Bare(`bare-${i}`, { parent: floor });
}

export {};
