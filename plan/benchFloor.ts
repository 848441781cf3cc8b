// The benchmark's floors, run by the same recorder as the real program:
// - bare (phoenix:floorResources = N): one component and N - 1 custom resources of a fake type without inputs, the
//   SDK's own cost per registration;
// - replay (phoenix:floorReplay = file): the resources a plan recorded, same types, names, inputs, parents and
//   dependencies, registered in a flat loop without the program (no catalog, no outputs flowing between resources).
// A plan's time above the replay is the program's own work; the replay above the bare floor is what the real
// resource types cost the SDK (each output property is an Output with its own promises).
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import * as command from "@pulumi/command";
import { unwrapSecrets } from "./engine";

export interface ReplayResource {
    type: string;
    name: string;
    custom: boolean;
    parent?: string;
    dependsOn: string[];
    inputs: Record<string, unknown>;
}

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

const replay = (resources: ReplayResource[]): void => {
    const made = new Map<string, pulumi.Resource>();
    for (const r of resources) {
        const opts = { parent: r.parent ? made.get(r.parent) : undefined, dependsOn: r.dependsOn.map((d) => made.get(d)!).filter(Boolean) };
        const inputs = unwrapSecrets(r.inputs);
        if (!r.custom) made.set(r.name, new Component(r.type, r.name, opts));
        else if (r.type === "pulumi:providers:proxmoxve") made.set(r.name, new proxmox.Provider(r.name, { endpoint: inputs.endpoint, apiToken: inputs.apiToken }, opts));
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
