// The Proxmox rules of the policy pack, as pure functions over the resources Pulumi is about to register. The policy
// pack (policies.ts) and the unit tests (test/policy.spec.ts, on the recorded program) call the same functions, so
// what the tests prove is what `pulumi preview --policy-pack policy` enforces.
//
// Rules read only values known at preview time (literal inputs, names, parents, options): a value computed by the
// provider (a clone source's vmId, a firewall's containerId) is unknown during preview and would make the policy
// framework skip the rule.

/** One resource as the rules see it: type, name, inputs and the options that matter here. */
export interface Subject {
    type: string;
    name: string;
    urn: string;
    /** Inputs, secrets unwrapped (the policy framework hands them over in plain form). */
    props: Record<string, any>;
    protect: boolean;
    deleteBeforeReplace: boolean;
    /** URN of the parent resource (the guest's component for every guest resource). */
    parent?: string;
}

export interface Violation {
    urn: string;
    message: string;
}

export const TYPES = {
    container: "proxmoxve:index/containerLegacy:ContainerLegacy",
    vm: "proxmoxve:index/vmLegacy:VmLegacy",
    firewallOptions: "proxmoxve:firewall/optionsLegacy:OptionsLegacy",
    provider: "pulumi:providers:proxmoxve",
} as const;

const isGuest = (r: Subject): boolean => r.type === TYPES.container || r.type === TYPES.vm;
const guestLabel = (r: Subject): string => `${r.type === TYPES.container ? "container" : "VM"} ${r.name}`;

/**
 * Container feature flags and the feature scripts that need them. A flag is justified when one of the guest's
 * features (its `<id>-feature-<name>` steps) is listed for it. Docker inside a container needs nesting (its own
 * namespaces and cgroups) and keyctl (its overlay and key handling); FUSE filesystems need fuse.
 */
export const FEATURES_NEEDING_FLAG: Record<"nesting" | "keyctl" | "fuse", readonly string[]> = {
    nesting: ["docker"],
    keyctl: ["docker"],
    fuse: ["rclone", "sshfs"],
};

/** Features whose guest holds state that a deletion destroys (the CA's keys): the guest must be protected. */
export const STATEFUL_FEATURES: readonly string[] = ["step_ca"];
/** A catalog tag that marks any guest as stateful. */
export const STATEFUL_TAG = "stateful";

/**
 * The line a privileged container's description carries with the catalog's privilegedReason. The rule accepts a
 * privileged container only with a non-empty reason there, so the reason is visible in the Proxmox UI too.
 */
export const PRIVILEGED_REASON_LINE = /^privileged because:\s*\S/im;

/** Feature names of a guest's steps, from the step resources' names (`103-feature-step_ca`, `101-feature-base_setup-2`). */
const FEATURE_STEP = /^\d+-feature-([a-z][a-z0-9_]*?)(?:-\d+)?$/;
export const featuresOf = (guest: Subject, all: readonly Subject[]): string[] =>
    guest.parent === undefined
        ? []
        : all.filter((r) => r.parent === guest.parent).flatMap((r) => FEATURE_STEP.exec(r.name)?.[1] ?? []);

// ---- resource rules: one resource in, violation messages out ----

/** The guest firewall is on with a default-deny input policy, and every NIC of the guest goes through it. */
export const firewallDefaultDeny = (r: Subject): string[] => {
    if (r.type === TYPES.firewallOptions) {
        const problems: string[] = [];
        if (r.props.enabled !== true) {
            problems.push(`${r.name}: the guest firewall is disabled, so its rules are inert; set firewall.enabled: true in the guest's catalog file`);
        }
        // Unset means the provider's default, DROP.
        const inputPolicy = r.props.inputPolicy ?? "DROP";
        if (inputPolicy !== "DROP" && inputPolicy !== "REJECT") {
            problems.push(`${r.name}: input policy ${inputPolicy} lets every inbound packet through; set firewall.inputPolicy: DROP (or REJECT) and allow services with rules`);
        }
        return problems;
    }
    if (r.type === TYPES.container || r.type === TYPES.vm) {
        const nics: any[] = (r.type === TYPES.container ? r.props.networkInterfaces : r.props.networkDevices) ?? [];
        return nics
            .map((nic, i) => ({ nic, i }))
            .filter(({ nic }) => nic.firewall !== true)
            .map(({ nic, i }) => `${guestLabel(r)}: network interface ${nic.name ?? `#${i}`} has firewall off, so the guest firewall does not filter it`);
    }
    return [];
};

/** Containers run unprivileged unless the catalog gives a reason (carried into the container's description). */
export const containerUnprivileged = (r: Subject): string[] => {
    // Unset means the provider's default: privileged.
    if (r.type !== TYPES.container || r.props.unprivileged === true) return [];
    if (PRIVILEGED_REASON_LINE.test(String(r.props.description ?? ""))) return [];
    return [
        `${guestLabel(r)} is privileged (unprivileged: false) with no reason: root in a privileged container is root on the node. ` +
            "Make it unprivileged, or set privilegedReason in its catalog file",
    ];
};

/** Every guest has a fixed VM/CT ID (the catalog's id), and the provider never picks random ones. */
export const fixedVmId = (r: Subject): string[] => {
    if (r.type === TYPES.provider) {
        const random = r.props.randomVmIds;
        return random === true || random === "true"
            ? [`provider ${r.name}: randomVmIds is on; guest IDs must come from the catalog so clones, firewalls and snapshots find their guest`]
            : [];
    }
    if (!isGuest(r)) return [];
    const id = r.props.vmId;
    return Number.isInteger(id) && id >= 100
        ? []
        : [`${guestLabel(r)}: vmId is ${JSON.stringify(id) ?? "unset"}; every guest needs its fixed catalog ID (100 or more), never a provider-assigned one`];
};

/** VMs run the QEMU guest agent: without it the provider cannot read their addresses and shutdowns are hard stops. */
export const vmGuestAgent = (r: Subject): string[] => {
    if (r.type !== TYPES.vm || r.props.agent?.enabled === true) return [];
    return [`${guestLabel(r)}: the QEMU guest agent is not enabled (agent.enabled); the VM's IP address and clean shutdowns depend on it`];
};

/** A guest with a fixed ID must be deleted before its replacement is created: the ID cannot exist twice. */
export const deleteBeforeReplace = (r: Subject): string[] => {
    if (!isGuest(r) || r.props.vmId === undefined || r.deleteBeforeReplace) return [];
    return [`${guestLabel(r)}: fixed ID ${r.props.vmId} without deleteBeforeReplace; a replacement would be created first and fail with "${r.props.vmId} already exists"`];
};

// ---- stack rules: every resource in, violations attributed to a resource ----

/**
 * Every guest has its firewall options resource (a guest without one keeps Proxmox's default: firewall off). A VM
 * created as a template is exempt: it never boots, and a firewall on it would be copied, unmanaged, into its clones.
 */
export const firewallPresent = (all: readonly Subject[]): Violation[] =>
    all
        .filter(isGuest)
        .filter((g) => !(g.type === TYPES.vm && g.props.template === true))
        .filter((g) => !all.some((r) => r.type === TYPES.firewallOptions && r.parent !== undefined && r.parent === g.parent))
        .map((g) => ({ urn: g.urn, message: `${guestLabel(g)} has no firewall options resource, so its guest firewall stays off` }));

/** No two guests share a VM/CT ID (Proxmox IDs are unique across the cluster, containers and VMs alike). */
export const uniqueVmIds = (all: readonly Subject[]): Violation[] => {
    const owners = new Map<number, Subject>();
    const violations: Violation[] = [];
    for (const g of all.filter(isGuest)) {
        const id = g.props.vmId;
        if (!Number.isInteger(id)) continue; // reported by fixedVmId
        const first = owners.get(id);
        if (first) violations.push({ urn: g.urn, message: `${guestLabel(g)} uses ID ${id}, already used by ${guestLabel(first)}` });
        else owners.set(id, g);
    }
    return violations;
};

/** Container feature flags (nesting, keyctl, fuse) are on only when one of the container's features needs them. */
export const containerFlagsJustified = (all: readonly Subject[]): Violation[] =>
    all
        .filter((r) => r.type === TYPES.container)
        .flatMap((ct) => {
            const features = featuresOf(ct, all);
            return (Object.keys(FEATURES_NEEDING_FLAG) as (keyof typeof FEATURES_NEEDING_FLAG)[])
                .filter((flag) => ct.props.features?.[flag] === true && !features.some((f) => FEATURES_NEEDING_FLAG[flag].includes(f)))
                .map((flag) => ({
                    urn: ct.urn,
                    message:
                        `${guestLabel(ct)}: ${flag} is on, but none of its features (${features.join(", ") || "none"}) needs it ` +
                        `(needed by: ${FEATURES_NEEDING_FLAG[flag].join(", ")}); turn pctFeatures.${flag} off or add the feature that needs it`,
                }));
        });

/** Guests that hold state (the CA's keys, or tagged stateful) are protected against deletion by Pulumi. */
export const statefulProtected = (all: readonly Subject[]): Violation[] =>
    all
        .filter(isGuest)
        .filter((g) => !g.protect)
        .flatMap((g) => {
            const why = featuresOf(g, all).find((f) => STATEFUL_FEATURES.includes(f));
            const tagged = ((g.props.tags ?? []) as string[]).includes(STATEFUL_TAG);
            if (!why && !tagged) return [];
            return [{
                urn: g.urn,
                message: `${guestLabel(g)} holds state (${why ? `feature ${why}` : `tag ${STATEFUL_TAG}`}) but is not protected; set protect: true in its catalog file so a destroy or replacement cannot delete it`,
            }];
        });
