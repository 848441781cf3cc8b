// The provider twin's rules, as data: for each resource type the program uses and each input it sets, what a change
// does (nothing, an update in place with or without a reboot, a replacement, an error), and what create, read and the
// engine do beyond echoing inputs. Every rule cites its source so that the next provider upgrade is a diff of this file:
// "§2.1" is a section of ../shared/reference/provider-semantics.md, then the file and lines it quotes:
//   CT/VM/DK/DS/FO/FR/DF/FL  bpg/terraform-provider-proxmox v0.111.1 (container.go, vm.go, disk/{disk,schema}.go,
//                            firewall/{options,rules}.go, nodes/resource_download_file.go, file.go)
//   LXCAPI/QMAPI             pve-container src/PVE/API2/LXC.pm @94f5585, qemu-server src/PVE/API2/Qemu.pm @e6352be
//   PCC/GP                   pulumi-command v1.2.1 remote/commandController.go, pulumi-go-provider v1.3.0 infer/resource.go
//   SG/STEP                  pulumi/pulumi @1b59498 pkg/resource/deploy/{step_generator,step}.go
//   BRIDGE                   pulumi-terraform-bridge v3.135.0 (muhlba91/pulumi-proxmoxve provider/go.mod) pkg/tfbridge/{provider,schema}.go
// A rule marked `inferred` is the reference's reading of code, not a statement of any source: the twin then models
// the safe side (the outcome that costs more, e.g. a replacement rather than a no-op), and says so.

export const CONTAINER = "proxmoxve:index/containerLegacy:ContainerLegacy";
export const VM = "proxmoxve:index/vmLegacy:VmLegacy";
export const DOWNLOAD = "proxmoxve:download/file:File";
export const SNIPPET = "proxmoxve:index/fileLegacy:FileLegacy";
export const FW_OPTIONS = "proxmoxve:firewall/optionsLegacy:OptionsLegacy";
export const FW_RULES = "proxmoxve:firewall/rulesLegacy:RulesLegacy";
export const COMMAND = "command:remote:Command";
export const PROVIDER = "pulumi:providers:proxmoxve";
export const HA_RESOURCE = "proxmoxve:index/haresource:Haresource";
export const HA_GROUP = "proxmoxve:index/hagroup:Hagroup";
export const HA_RULE = "proxmoxve:index/harule:Harule";

/**
 * What a change of one input does.
 * - update: in place; `reboot` says whether the provider restarts the guest for it
 * - state: in place, but only the state changes (nothing is sent to Proxmox)
 * - replace: delete and create again (ForceNew / RequiresReplace)
 * - grow-update/shrink-replace, grow-update/shrink-error: by the direction of a size change
 * - to-true-update/else-error: only false -> true is possible in place
 * - migrate-update/else-replace: in place (a migration) when the resource's `migrate` input is true, else replaced
 * - none: the provider ignores the change after creation (no diff)
 */
export type OnChange =
    | "update"
    | "state"
    | "replace"
    | "grow-update/shrink-replace"
    | "grow-update/shrink-error"
    | "to-true-update/else-error"
    | "migrate-update/else-replace"
    | "none";

/**
 * Whether the provider reboots the guest for the change: "if-started" (a container: when the planned `started` is true,
 * CT:4163-4176; what that value is while the program ignores `started` is inferred, so the twin announces the reboot
 * for every container but a template, plan/twin/providers.ts), "if-running" (a VM: decided from its real status,
 * VM:2051-2082), or no.
 */
export type Reboot = "if-started" | "if-running" | "no";

export interface FieldRule {
    /** Input path: dotted, `[]` for every element of a list, `*` for any key; a rule also covers everything below it. */
    path: string;
    change: OnChange;
    reboot: Reboot;
    cite: string;
    /** The reference marks this "(inferred)": what it infers, and the safe side the twin takes. */
    inferred?: string;
}

const r = (path: string, change: OnChange, reboot: Reboot, cite: string, inferred?: string): FieldRule => ({ path, change, reboot, cite, ...(inferred ? { inferred } : {}) });

/** First match wins: specific paths before their parents. */
export const FIELD_RULES: Record<string, FieldRule[]> = {
    [CONTAINER]: [
        r("nodeName", "replace", "no", "§2.1; CT:991 ForceNew"),
        r("vmId", "replace", "no", "§2.1; CT:1172-1181 ForceNewIf new != resource id"),
        r("clone", "replace", "no", "§2.1; CT:239,246,255,268 ForceNew"),
        r("operatingSystem", "replace", "no", "proxmox-pulumi-notes §2 (container.go schema: operatingSystem ForceNew)"),
        r("unprivileged", "replace", "no", "§2.1; CT:1156 ForceNew"),
        r("template", "replace", "no", "§2.1; CT:1094 ForceNew"),
        r("disk.datastoreId", "replace", "no", "§2.1; CT:412 ForceNew"),
        r("disk.size", "grow-update/shrink-replace", "no", "§2.1; grow: rootfs resize CT:3636-3680; shrink: ForceNewIf CT:1183-1222"),
        r("mountPoints", "replace", "no", "§2.1; block ForceNew CT:750 (volume :817, size :810); update code unreachable (bpg#3028)"),
        r("description", "update", "no", "§2.1 in place"),
        r("tags", "update", "no", "§2.1 in place; order-insensitive CT:1079-1089"),
        r("startOnBoot", "update", "no", "§2.1 in place"),
        r("startup", "update", "no", "§2.1 in place"),
        r("cpu", "update", "no", "§2.1; CT:3603-3634"),
        r("features", "update", "no", "§2.1; all flags sent CT:3728-3736",
            "PVE applies features to a running container only at its next start (LXCCFG fastplug :1612-1622); no reboot"),
        r("memory", "update", "if-started", "§2.1; CT:3885 reboot required"),
        r("networkInterfaces", "update", "if-started", "§2.1; CT:3962-4051, reboot CT:4049"),
        r("initialization.ipConfigs", "update", "if-started", "§2.1; CT:3962-4051, reboot CT:4049"),
        r("initialization.dns", "update", "if-started", "§2.1; CT:3832-3852"),
        r("initialization.hostname", "update", "if-started", "§2.1; CT:3832-3852"),
        r("initialization.userAccount", "replace", "no", "proxmox-pulumi-notes §2 (container.go schema: userAccount ForceNew)"),
        r("idmaps", "update", "if-started", "§2.1; sed + append over SSH CT:2621-2658, 3927-3933"),
        r("devicePassthroughs", "update", "if-started", "bpg container.go:3889-3921 in place, reboot CT:3920 (entries past a shorter list stay)"),
        r("started", "update", "no", "§2.1; start, or shutdown with forceStop CT:4129-4160"),
        r("timeoutCreate", "state", "no", "§2.1 state only"),
        r("timeoutClone", "state", "no", "§2.1 state only"),
    ],
    [VM]: [
        r("nodeName", "migrate-update/else-replace", "no", "§3.1; ForceNewIf migrate false VM:1781-1790 (with migrate: qm migrate)"),
        r("migrate", "state", "no", "§3.1 (VM:1781-1790 reads it at the next node change)"),
        r("vmId", "replace", "no", "§3.1; ForceNewIf != id VM:1767-1779"),
        r("clone", "replace", "no", "§3.1; ForceNew VM:592-640"),
        r("initialization.type", "replace", "no", "§3.1; ForceNew VM:1002-1031"),
        r("initialization.vendorDataFileId", "replace", "no", "§3.1; ForceNew VM:1002-1031"),
        r("template", "to-true-update/else-error", "no", "§3.1; false->true converts in place VM:6970-6997, true->false errors VM:7000"),
        r("name", "update", "no", "§3.1; resent every update VM:6246-6252"),
        r("description", "update", "no", "§3.1 in place"),
        r("tags", "update", "no", "§3.1 in place"),
        r("onBoot", "update", "no", "§3.1 in place"),
        r("startup", "update", "no", "§3.1 in place"),
        r("cpu", "update", "if-running", "§3.1; VM:6382-6478 (only hotplugged vcpus avoid it; the program sets none)"),
        r("memory", "update", "if-running", "§3.1; VM:6742-6812 (no memory hotplug by default, VM:85)"),
        r("agent", "update", "if-running", "§3.1; VM:6266-6290"),
        r("scsiHardware", "update", "if-running", "§3.1; VM:6912-6916"),
        r("operatingSystem", "update", "if-running", "§3.1; VM:6850-6866"),
        r("serialDevices", "update", "if-running", "§3.1; VM:6870-6877"),
        r("vga", "update", "if-running", "§3.1; VM:6895-6898"),
        r("networkDevices", "update", "no", "§3.1; VM:6821-6848"),
        r("initialization.userAccount.password", "none", "no", "§3.1; DiffSuppressFunc VM:979-982 once the state holds the masked value the read stores (VM:5145-5146)",
            "Proxmox returns cipassword masked (**********), so no later change diffs; the twin takes the side that never claims a rotation reached the VM (the program warns)"),
        r("initialization", "update", "if-running", "§3.1; cloud-init drive rebuilt VM:6592-6685, 7008-7012"),
        r("disks[].size", "grow-update/shrink-error", "no", "§3.1; grow VM:7271-7289 (disk hotplug is on by default VM:7082-7086); shrink errors VM:7294-7300"),
        r("disks[].datastoreId", "update", "if-running", "§3.1; move_disk, needs power-off VM:7256-7266, 7025-7040"),
        r("disks[].interface", "replace", "no", "§3.2; disks are matched by interface after a clone (DK:59-142)",
            "a new interface is another disk; the reference has no rule for it, so the twin takes the safe side: a replacement"),
        r("disks[].importFrom", "none", "no", "§3.1; not ForceNew, ignored after creation DS:144-151, DK:685"),
        r("disks[].discard", "update", "no", "§3.1; DK:675-683"),
        r("disks[].iothread", "update", "no", "§3.1; DK:675-683"),
        r("disks[].ssd", "update", "no", "§3.1; DK:675-683"),
        r("started", "update", "no", "§3.1; start/stop VM:2252-2319"),
        r("stopOnDestroy", "state", "no", "§3.1 state only"),
        r("timeoutClone", "state", "no", "§3.1 state only"),
        r("timeoutStartVm", "state", "no", "§3.1 state only"),
    ],
    [DOWNLOAD]: [
        ...["contentType", "fileName", "datastoreId", "nodeName", "url", "checksum", "checksumAlgorithm", "decompressionAlgorithm"].map((p) =>
            r(p, "replace", "no", "§4; RequiresReplace DF:216-327"),
        ),
        ...["uploadTimeout", "verify", "overwrite", "overwriteUnmanaged"].map((p) => r(p, "state", "no", "§4; Update only re-reads the size DF:619-640")),
    ],
    [SNIPPET]: [
        ...["contentType", "datastoreId", "nodeName", "sourceRaw", "fileMode"].map((p) => r(p, "replace", "no", "§5; ForceNew FL:80-218")),
        r("*", "state", "no", "§5; Update is a no-op FL:1023-1027"),
    ],
    // No ForceNew on any firewall field, not even the guest it belongs to (SEL:26-62).
    [FW_OPTIONS]: [r("*", "update", "no", "§6; FO:50-131, the whole set PUT FO:202-234, 297-304")],
    [FW_RULES]: [r("*", "update", "no", "§6; FR:62-186, matched by signature and moved FR:379-571")],
    [COMMAND]: [
        // The SDK registers every Command with replaceOnChanges ["triggers[*]"]: the engine replaces on that key.
        r("triggers", "replace", "no", "§7; replaceOnChanges triggers (pulumi-command provider/pkg/provider/common/inputs.go:10)"),
        r("*", "update", "no", "§7; any other input: Update runs `update` if set, else `create` (PCC:62-82, GP:1155-1252)"),
    ],
    // HA (clusters): not in provider-semantics.md; read from bpg main d6bd1ffe fwprovider/cluster/ha/*.go.
    [HA_RESOURCE]: [r("*", "update", "no", "bpg resource_haresource.go:70-140: no RequiresReplace on any attribute")],
    [HA_GROUP]: [r("*", "update", "no", "bpg resource_hagroup.go: no RequiresReplace on any attribute")],
    [HA_RULE]: [
        r("rule", "replace", "no", "bpg resource_harule.go:77-81 RequiresReplace"),
        r("type", "replace", "no", "bpg resource_harule.go:91-95 RequiresReplace"),
        r("*", "update", "no", "bpg resource_harule.go: in place"),
    ],
    // The bridge replaces a provider only for config its schema marks ForcesProviderReplace; pulumi-proxmoxve marks none.
    [PROVIDER]: [r("*", "update", "no", "BRIDGE provider.go:796-870 DiffConfig; muhlba91/pulumi-proxmoxve provider/resources.go:246 (Config: {})")],
};

/** A field no rule covers: the twin treats its change as an in-place update and says it is unmodelled. */
export const UNMODELLED: FieldRule = r("*", "update", "no", "no rule: unmodelled (assumed in place)");

/**
 * What the providers store that does not come from the inputs, and how Proxmox clones: the twin's create and read.
 * Each is a fact the twin implements in plan/twin/node.ts and plan/twin/providers.ts.
 */
export const PROXMOX_FACTS = {
    containerCreatedStopped: "§2.2; the container is created stopped unless started (start=started CT:2206, 2297): state started=false, ipv4 empty until a read when running (CT:3476-3512)",
    cloneKeepsSourceRootfs: "§2.2/§2.3; the clone call sends no rootfs size (CT:1260-1343): disk.size read back is the source's (CT:2814, 2832-2836; muhlba91/pulumi-proxmoxve#176)",
    cloneCopiesConfig: "§2.2; pct clone copies every config key but volumes and net* (LXCAPI:2034-2137): raw lxc.* lines and lxc.idmap (inferred), unprivileged; the firewall file (clone_vmfw_conf LXCAPI:2053)",
    cloneRefusesStorageLinked: "§2.2; storage with full=false dies \"not allowed for linked clones\" (LXCAPI:2055; QMAPI:4482)",
    cloneRefusesBindMounts: "§2.2; \"unable to clone mountpoint\" for bind/device mount points (LXCAPI:2109)",
    readStartedEveryTime: "§2.3/§3.3; started = status running on every read (CT:3473,3515; VM:4375-4380)",
    readUnprivilegedForClone: "§2.3; unprivileged read for non-clones or input true (CT:3368): the source's value (inferred)",
    readTemplate: "§2.3; template read for non-clones or input true (CT:3454)",
    readIdmapsAlways: "§2.3; idmaps always read from the config (CT:3040-3051)",
    vmCloneDisks: "§3.2; per disk after a clone: smaller than the source errors, moved if the datastore differs, grown (DK:59-142)",
    vmCloneCopiesFirewall: "§3.2; qm clone copies the firewall file (QMAPI:4510-4617)",
    vmAgentWait: "§3.3; when running with the agent enabled every read fills ipv4Addresses (NW:185-258)",
    rulesAbortOnExisting: "§6; RulesLegacy create aborts \"Existing rules detected. Aborting...\" when the guest has any rule (FR:277-287)",
    optionsDeleteStateOnly: "§6; OptionsLegacy delete only drops state (FO:306-310)",
    downloadRefusesExisting: "§4; create finds an existing file: with overwriteUnmanaged deleted and downloaded again, else an error (DF:434-447)",
    commandStdoutStored: "§7; stdout/stderr stored with one trailing newline trimmed (PCO:103-106); refresh reads nothing (GP:1353-1364)",
    commandUpdateReplacesStdout: "§7; Update runs `update` (else `create`) and stores its stdout (PCC:62-82, PCO:103-106)",
    commandDeleteFromState: "§7; Delete runs the state's `delete` with the state's connection (PCC:85-92, PCO:30-110); nothing when unset",
} as const;

/** The Pulumi engine's semantics the twin implements (plan/twin/deployment.ts). */
export const ENGINE_FACTS = {
    ignoreChanges: "SG:1264-1268, 3074-3095: ignored paths take the old inputs' values before the diff",
    ignoreChangesInDiff: "BRIDGE tfshim/sdk-v2/instance_diff.go:95-108 (called from provider2.go:619): a bridged provider's diff drops the ignored attributes",
    ignoreChangesOnReplace: "SG:2003-2022: a replacement re-checks the program's own inputs, so ignored paths take the program's values on a replacement",
    protectReplace: "SG:1954-1970: a replacement is refused while both old and new are protected (unprotecting and replacing in one run is allowed)",
    protectDelete: "STEP:613-649: deleting a protected resource fails; the message names `pulumi state unprotect`",
    deleteBeforeReplace: "SG:2047-2145, 3268-3430: dependents whose inputs derive from the replaced resource and would be replaced by that (unknown) change, and resources deletedWith/replaceWith it, are deleted first",
    replaceWith: "SG:2895-2905: a resource is replaced when one in its replaceWith list is (replace key \"replaceWith\")",
    deletedWith: "STEP:603-612, 664: no provider delete when the resource it is deleted with is deleted in the same run",
    retainOnDelete: "STEP:662: no provider delete",
    deleteWithOldState: "STEP:688-699: Delete gets the old inputs and outputs",
    refreshUpdatesInputs: "BRIDGE schema.go:2012-2022 (extractInputsObject): a refresh stores the read values into the inputs the state already has",
    providerDiff: "SG:2970-2990: the provider's Diff gets old inputs, old outputs and new inputs; bridged resources diff the config against the stored state (§1)",
} as const;

export const rulesFor = (type: string): FieldRule[] => FIELD_RULES[type] ?? [];
