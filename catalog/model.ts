// The resolved catalog: guest files with the shared defaults applied and every step's script and environment settled.
// Components read only this; they never hard-code an ID, address or name.
import type { DefaultsFile, LxcGuestFile, VmGuestFile } from "./schema";
import type { ScriptInfo, ScriptLibrary } from "./scripts";
import type { GuestIndex } from "./graph";
import type { Problem } from "./problems";
import type { Route, RouteWait } from "./routes";

export interface ResolvedNetwork {
    ip: string; // CIDR or "dhcp"
    gateway?: string;
    mac?: string;
    bridge: string;
    vlan?: number;
    nameservers: string[];
    searchDomain: string;
}

/** One feature or application script run inside a guest. */
export interface ResolvedStep {
    kind: "feature" | "application";
    name: string; // base_setup, or the application script name
    script: ScriptInfo;
    /** Non-secret parameters as UPPER_SNAKE environment values (catalog params, defaults and values derived from the catalog). */
    env: Record<string, string>;
    /** Secret parameters: script parameter name -> stack config key. */
    secrets: Record<string, string>;
    /** Guest whose CA root certificate and fingerprint this step consumes (CA_ROOT_PEM, CA_FINGERPRINT). */
    caFrom?: number;
    /** Guests that must be ready before this step runs. */
    after: number[];
    /** What the routes add (catalog/routes.ts): Traefik's routes wait for the gateway's application. */
    routeWait?: RouteWait;
}

/** A stack config key the program reads for a guest, and the catalog field that names it (a problem's location). */
export interface ConfigKeyRef {
    key: string; // without the phoenix: namespace
    at: Omit<Problem, "message">;
}

type Resolved<T> = Omit<T, "network" | "features" | "application" | "node" | "storage"> & {
    file: string;
    /** Every stack config key the program will read for this guest (step secrets, the cloud-init password). */
    configKeys: ConfigKeyRef[];
    node: string;
    /** For a copy of a template on another node (the template's `nodes`): the template's own ID. */
    copyOf?: number;
    /** For a clone: the guest actually cloned, the copy of `cloneFrom` on this guest's node if there is one. */
    cloneSource?: number;
    /** For a copy of a container template with a fixed address: the copy provisioned before it (they would clash). */
    provisionAfter?: number;
    storage: string;
    network: ResolvedNetwork;
    features: ResolvedStep[];
    application?: ResolvedStep;
    /** What the routes add to the health check (catalog/routes.ts): the gateway's waits for every route's guests. */
    healthRouteWait?: RouteWait;
};

export type LxcSpec = Resolved<Omit<LxcGuestFile, "osTemplate">> & {
    osTemplate: { file: string; storage: string; url?: string; checksum?: string; checksumAlgorithm?: string };
    /** Device nodes passed through for its GPUs (catalog/gpus.ts), empty without GPUs. */
    gpuDevices: string[];
};
export type VmSpec = Resolved<Omit<VmGuestFile, "image" | "cloudInit">> & {
    image: { url: string; fileName: string; storage: string; checksum?: string; checksumAlgorithm?: string };
    cloudInit: { user: string; passwordSecret?: string };
};
export type GuestSpec = LxcSpec | VmSpec;

export interface Catalog {
    dir: string;
    /** Every route's request path (catalog/routes.ts), checked. */
    routes: Route[];
    defaults: DefaultsFile;
    guests: ReadonlyMap<number, GuestSpec>;
    graph: GuestIndex;
    scripts: ScriptLibrary;
}

/** Environment names Phoenix fills in at run time from another guest's outputs. */
export const RUNTIME_CA_ENV = ["CA_ROOT_PEM", "CA_FINGERPRINT"] as const;

export const ipOf = (g: GuestSpec): string | undefined => (g.network.ip === "dhcp" ? undefined : g.network.ip.split("/")[0]);
