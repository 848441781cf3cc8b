// The program: read stack config, load and validate the catalog, resolve the selection, then build one component
// per guest in dependency order. Any bad input, and anything else that stops loading or validation, stops here with a
// RunError (no stack trace), before any resource.
import * as pulumi from "@pulumi/pulumi";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import { type Selection, SelectionError, cloneLanes, edgesOf, lanePredecessor, resolveSelection } from "../catalog/graph";
import { lanesOf, orderWithLanes } from "../catalog/gpuShares";
import type { Catalog } from "../catalog/model";
import { checkStackConfig } from "./configCheck";
import { announceProtection } from "./protection";
import type { Route } from "../catalog/routes";
import { createStackContext } from "./context";
import { type PhoenixGuest } from "./guest";
import { LxcGuest } from "./lxc";
import { VmGuest } from "./vm";
import { type StackSettings, readStackSettings } from "./stackConfig";

/**
 * Runs a loading or validation step so that whatever stops it reaches the user as a RunError (a clean message, no
 * stack trace): catalog, selection and config errors as they are; anything else (a bug, or a failure nothing
 * anticipated) with a message that says so, the original kept as `cause` for tests and bug reports.
 */
export const orRunError = <T>(step: string, f: () => T): T => {
    try {
        return f();
    } catch (e) {
        if (e instanceof pulumi.RunError) throw e;
        if (e instanceof CatalogError || e instanceof SelectionError) throw new pulumi.RunError(e.message);
        const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        throw Object.assign(new pulumi.RunError(`${step} failed unexpectedly (nothing was registered): ${what}. This is not an error Phoenix knows how to explain; please report it.`), { cause: e });
    }
};

export interface ProgramOutputs {
    selection: { requested: number[]; pulledIn: Selection["pulledIn"]; managed: number[] };
    guests: Record<string, { kind: string; dependsOn: number[]; vmId: pulumi.Output<number>; ip: string | undefined; node: string; ready: pulumi.Output<number> }>;
    /** The request path of each route whose guests the stack manages (catalog/routes.ts, checked before any resource). */
    routes: Route[];
}

export const buildGuests = (catalog: Catalog, selection: Selection, ctx: ReturnType<typeof createStackContext>): Map<number, PhoenixGuest> => {
    const lanes = cloneLanes(catalog.graph, selection.selected);
    const gpu = lanesOf(catalog.guests, catalog.graph, selection.selected).waits;
    const built = new Map<number, PhoenixGuest>();
    for (const id of orderWithLanes(selection.selected, (g) => [...edgesOf(catalog.graph.get(g)!).map((e) => e.to), ...(gpu.get(g) ?? [])])) {
        const spec = catalog.guests.get(id)!;
        const args = { ctx, built, lanePredecessor: lanePredecessor(lanes, spec.cloneSource, id), gpuLaneWaits: gpu.get(id) ?? [] };
        built.set(id, spec.kind === "lxc" ? new LxcGuest({ spec, ...args }) : new VmGuest({ spec, ...args }));
    }
    for (const g of built.values()) g.doneBuilding();
    return built;
};

/** Proxmox lets only root@pam (never an API token, even root's) add bind mounts or set container feature flags beyond nesting. */
export const checkAuthorization = (catalog: Catalog, ids: readonly number[], settings: StackSettings): void => {
    if (settings.auth.kind === "password" && settings.auth.username === "root@pam") return;
    const needRoot = ids.filter((id) => {
        const g = catalog.guests.get(id)!;
        // Proxmox: "changing feature flags (except nesting) is only allowed for root@pam", privileged or not.
        // Device passthrough (GPUs) too: "configuring device passthrough is only allowed for root@pam".
        return g.kind === "lxc" && (g.bindMounts.length > 0 || g.gpus.length > 0 || g.pctFeatures.keyctl || g.pctFeatures.fuse || (!g.unprivileged && g.pctFeatures.nesting));
    });
    if (needRoot.length === 0) return;
    throw new pulumi.RunError(
        `guests ${needRoot.join(", ")} use bind mounts, device passthrough (GPUs) or container feature flags beyond nesting, which Proxmox allows only for root@pam ` +
            `(API tokens are refused, even root's): set phoenix:auth to password with phoenix:username root@pam and the secret phoenix:password`,
    );
};

export const program = (): ProgramOutputs => {
    const settings = orRunError("reading the stack config", () => readStackSettings());
    const { catalog, selection } = orRunError("loading the catalog", () => {
        const catalog = loadCatalog({ dir: settings.catalog, node: settings.node, nodes: [...settings.nodes.keys()] });
        const selection = resolveSelection(catalog.graph, settings.guests);
        checkAuthorization(catalog, selection.selected, settings);
        checkStackConfig(catalog, selection.selected, settings);
        return { catalog, selection };
    });
    const built = buildGuests(catalog, selection, createStackContext(catalog, settings));
    announceProtection(selection.selected.map((id) => catalog.guests.get(id)!), settings.allowReplace);
    return {
        selection: { requested: selection.requested, pulledIn: selection.pulledIn, managed: selection.selected },
        guests: Object.fromEntries(
            [...built].map(([id, g]) => {
                const spec = catalog.guests.get(id)!;
                return [String(id), { kind: spec.kind, dependsOn: spec.dependsOn, vmId: g.vmId, ip: g.ip, node: g.node, ready: g.ready }];
            }),
        ),
        routes: catalog.routes.filter((r) => r.hops.every((h) => h.guest === undefined || built.has(h.guest))),
    };
};
