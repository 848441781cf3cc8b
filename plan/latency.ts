// How long each step of a `pulumi up` takes, in model seconds, from the reference latency model: the shared one
// beside the project (../shared/perf/latency-model.yaml) when it exists, else plan/latency-model.yaml (a fresh clone).
// The whole mapping from a recorded resource to its figure is the one table below.
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { PROJECT_ROOT } from "./stackFile";

export interface LatencyModel {
    lxc: { create_from_os_template: number; clone: number; clone_lock_hold: number; configure: number; start: number; convert_to_template: number };
    vm: { download_cloud_image: number; create_template_from_image: number; clone: number; clone_lock_hold: number; configure: number; start_and_wait_agent: number };
    guest: { snapshot: number; health_check: number; application_script: number; feature: Record<string, number> & { default: number } };
    limits: {
        concurrent_clones_per_source: number;
        /** Heavy steps (clones and creates, downloads, feature and application scripts) one node runs at once. */
        concurrent_heavy_steps_per_node: number;
    };
    /** Where the figures came from. */
    source: string;
    /** Whether the model file gave the per-node limit (else DEFAULT_HEAVY_STEPS_PER_NODE). */
    hostLimitFrom: "model" | "default";
}

/** The per-node limit of a model that has none (the shared reference model predates it). */
export const DEFAULT_HEAVY_STEPS_PER_NODE = 4;

export const SHARED_MODEL = path.resolve(PROJECT_ROOT, "..", "shared", "perf", "latency-model.yaml");
export const BUNDLED_MODEL = path.join(__dirname, "latency-model.yaml");

export const loadLatencyModel = (file?: string): LatencyModel => {
    const chosen = file ?? (fs.existsSync(SHARED_MODEL) ? SHARED_MODEL : BUNDLED_MODEL);
    const m = parse(fs.readFileSync(chosen, "utf8")) as Omit<LatencyModel, "source" | "hostLimitFrom">;
    for (const key of ["lxc", "vm", "guest", "limits"] as const) {
        if (typeof m?.[key] !== "object") throw new Error(`latency model ${chosen}: missing section ${key}`);
    }
    const perNode = m.limits.concurrent_heavy_steps_per_node as number | undefined;
    if (perNode !== undefined && !(Number.isInteger(perNode) && perNode >= 1)) {
        throw new Error(`latency model ${chosen}: limits.concurrent_heavy_steps_per_node must be a positive integer (got ${JSON.stringify(perNode)})`);
    }
    return {
        ...m,
        limits: { ...m.limits, concurrent_heavy_steps_per_node: perNode ?? DEFAULT_HEAVY_STEPS_PER_NODE },
        source: chosen,
        hostLimitFrom: perNode === undefined ? "default" : "model",
    };
};

/** What the table needs to know about one recorded resource. */
export interface StepFacts {
    /** Resource type token. */
    type: string;
    /** Name without the `<guest id>-` prefix: ct, fw-rules, feature-step_ca. */
    role: string;
    /** Kind of the owning guest; undefined for resources outside any guest (the provider). */
    kind?: "lxc" | "vm";
    custom: boolean;
    /** A container or VM created as a clone. */
    clone: boolean;
}

export interface StepCost {
    /** Lifecycle step in words, for the plan. */
    what: string;
    seconds: number;
    /** The latency-model entry used, e.g. lxc.clone; "none" for bookkeeping resources. */
    figure: string;
    /** Whether it counts against its node's limit on heavy steps. */
    heavy: boolean;
}

/**
 * Steps that load a node's disks, CPU or network for long: clones and creates (disk copies), downloads, and feature
 * scripts (package installs in the guest). Application scripts mostly write configuration and are not counted.
 */
const HEAVY = /^(lxc\.(create_from_os_template|clone)|vm\.(create_template_from_image|clone|download_cloud_image)|guest\.feature\..+)$/;

const CONTAINER = "proxmoxve:index/containerLegacy:ContainerLegacy";
const VM = "proxmoxve:index/vmLegacy:VmLegacy";
const DOWNLOAD = "proxmoxve:download/file:File";

type Rule = { when: (s: StepFacts) => RegExpExecArray | boolean | null; what: (s: StepFacts, m: RegExpExecArray | null) => string; figure: (s: StepFacts, m: RegExpExecArray | null) => string };
const role = (re: RegExp) => (s: StepFacts) => re.exec(s.role);
const kindOf = (s: StepFacts) => s.kind ?? "lxc";

/** First match wins. Figures are latency-model paths; feature figures fall back to guest.feature.default. */
const TABLE: Rule[] = [
    { when: (s) => !s.custom || s.type.startsWith("pulumi:providers:"), what: () => "bookkeeping", figure: () => "none" },
    { when: (s) => s.type === CONTAINER && s.clone, what: () => "clone", figure: () => "lxc.clone" },
    { when: (s) => s.type === CONTAINER, what: () => "create from OS template", figure: () => "lxc.create_from_os_template" },
    { when: (s) => s.type === VM && s.clone, what: () => "clone", figure: () => "vm.clone" },
    { when: (s) => s.type === VM, what: () => "create from cloud image", figure: () => "vm.create_template_from_image" },
    { when: (s) => s.type === DOWNLOAD, what: (s) => (s.kind === "vm" ? "download cloud image" : "download OS template"), figure: () => "vm.download_cloud_image" },
    { when: role(/^fw-(.+)$/), what: (_s, m) => `firewall ${m![1]}`, figure: (s) => `${kindOf(s)}.configure` },
    { when: role(/^(host-dirs|subids|resize|lxc-conf|vendor-data)(-[A-Za-z0-9-]+)?$/), what: (_s, m) => `configure (${m![1]}${m![2] ? ` on ${m![2].slice(1)}` : ""})`, figure: (s) => `${kindOf(s)}.configure` },
    { when: role(/^ha(-group|-rule)?$/), what: (_s, m) => (m![1] ? `HA ${m![1].slice(1)}` : "put under HA"), figure: (s) => `${kindOf(s)}.configure` },
    { when: (s) => s.kind === "vm" && /^(start|wait)$/.test(s.role), what: () => "start, wait for agent", figure: () => "vm.start_and_wait_agent" },
    { when: role(/^start$/), what: () => "start", figure: () => "lxc.start" },
    { when: role(/^snap-(.+)$/), what: (_s, m) => `snapshot ${m![1]}`, figure: () => "guest.snapshot" },
    { when: role(/^feature-([a-z0-9_]+?)(-\d+)?$/), what: (_s, m) => `feature ${m![1]}`, figure: (_s, m) => `guest.feature.${m![1]}` },
    { when: role(/^app$/), what: () => "application script", figure: () => "guest.application_script" },
    { when: role(/^health$/), what: () => "health check", figure: () => "guest.health_check" },
    { when: role(/^template$/), what: () => "convert to template", figure: () => "lxc.convert_to_template" },
    // Anything new in a guest is costed like a configuration change and says so, rather than silently taking 0.
    { when: () => true, what: () => "unmodelled (as configure)", figure: (s) => `${kindOf(s)}.configure` },
];

const lookup = (model: LatencyModel, figure: string): [number, string] => {
    if (figure === "none") return [0, figure];
    const value = figure.split(".").reduce<any>((v, k) => v?.[k], model);
    if (typeof value === "number") return [value, figure];
    if (figure.startsWith("guest.feature.")) return [model.guest.feature.default, "guest.feature.default"];
    throw new Error(`latency model ${model.source}: no figure ${figure}`);
};

export const stepCost = (model: LatencyModel, s: StepFacts): StepCost => {
    for (const rule of TABLE) {
        const hit = rule.when(s);
        if (!hit) continue;
        const m = typeof hit === "boolean" ? null : hit;
        const [seconds, figure] = lookup(model, rule.figure(s, m));
        return { what: rule.what(s, m), seconds, figure, heavy: HEAVY.test(figure) };
    }
    throw new Error("unreachable: the table ends with a catch-all");
};
