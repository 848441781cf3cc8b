// phoenix:index:VmGuest — one QEMU VM and every step of its life as child resources, in this order:
//   [image] [vendor-data] vm                                   (image + vendor-data only for a VM built from the cloud image)
//   [fw-reset] fw-options [fw-rules] wait [snap-pre-configured] feature-* [app] [health] [snap-final-form]   (not on a template;
//   fw-reset only on a clone)
// A template (template: true) is created directly as a Proxmox template: it never boots, so it has no firewall, no
// wait and no in-guest steps (the catalog rejects features on a VM template). A clone boots with a static IP from
// cloud-init; the wait step checks on the node, through the guest agent, that it is up; the in-guest steps then run
// over SSH to the VM's catalog IP, through the node as jump host.
//
// Extension point (Docker stacks): a guest's compose stacks would be one more step after the health check, a
// scriptStep("stack-<name>", ...) fed by the catalog, chained like the application so the final-form snapshot covers it.
import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import type * as command from "@pulumi/command";
import type { VmSpec } from "../catalog/model";
import { type FirewallRuleSpec, type HaSpec, isIpv4 } from "../catalog/schema";
import { haCandidates } from "../catalog/cluster";
import { vendorDataFileName, vendorDataYaml } from "./cloudInit";
import { TYPE_PREFIX } from "./context";
import { type GuestArgs, type GuestShell, PhoenixGuest } from "./guest";
import { shq } from "./shell";

/** Where the VM's disk and cloud-init vendor data come from, and the cloud-init secrets. */
export interface VmSources {
    /** Volume ID of the downloaded cloud image (a VM built from the image), or... */
    importFrom?: string;
    /** ...the template to clone: its vmId and its node (the clone waits for the template through dependsOn). */
    clone?: { vmId: number; node: string };
    vendorDataFileId: string;
    sshPublicKeys: pulumi.Input<string[]>;
    password?: pulumi.Input<string>;
}

/**
 * The VM's arguments, value by value from the catalog (pure: tested without the engine). A clone restates what it
 * shares with its template (disk attributes, SCSI controller, OS type, serial console): for a clone the provider
 * applies its schema defaults to every attribute left out, which would silently undo the template's values.
 */
export const vmArgs = (spec: VmSpec, src: VmSources): proxmox.VmLegacyArgs => {
    const boots = !spec.template;
    const net = spec.network;
    return {
        nodeName: spec.node,
        vmId: spec.id,
        name: spec.name,
        description: spec.description,
        tags: [...new Set(["phoenix", ...spec.tags])].sort(), // Proxmox sorts tags: any other order is a perpetual diff
        template: spec.template,
        ...(src.clone
            ? { clone: { vmId: src.clone.vmId, nodeName: src.clone.node, ...(spec.fullClone ? { datastoreId: spec.storage } : {}), full: spec.fullClone, retries: 3 } }
            : {}),
        cpu: { cores: spec.cores, type: spec.cpuType },
        memory: { dedicated: spec.memoryMb },
        scsiHardware: "virtio-scsi-single",
        operatingSystem: { type: "l26" },
        disks: [
            {
                interface: "scsi0",
                datastoreId: spec.storage,
                ...(src.importFrom !== undefined ? { importFrom: src.importFrom } : {}),
                size: spec.diskGb,
                discard: "on",
                iothread: true,
                ssd: true,
            },
        ],
        // A template never starts, so only a booting VM waits for the agent (bounded) and for an IPv4 address.
        agent: {
            enabled: true,
            trim: true,
            type: "virtio",
            ...(boots ? { timeout: `${spec.agentTimeoutSeconds}s`, waitForIp: { ipv4: true } } : {}),
        },
        serialDevices: [{ device: "socket" }],
        vga: { type: "serial0" },
        networkDevices: [{ bridge: net.bridge, model: "virtio", macAddress: net.mac, vlanId: net.vlan, firewall: true }],
        initialization: {
            datastoreId: spec.storage,
            interface: "ide2",
            type: "nocloud",
            vendorDataFileId: src.vendorDataFileId,
            userAccount: {
                username: spec.cloudInit.user,
                keys: src.sshPublicKeys,
                ...(src.password !== undefined ? { password: src.password } : {}),
            },
            dns: { servers: net.nameservers, domain: net.searchDomain },
            ipConfigs: [{ ipv4: net.ip === "dhcp" ? { address: "dhcp" } : { address: net.ip, gateway: net.gateway } }],
        },
        onBoot: spec.startOnBoot,
        startup: spec.startup ? { ...spec.startup } : undefined,
        started: boots,
        stopOnDestroy: true,
        // A node change migrates the VM (online when it runs, with its local disks) instead of re-creating it.
        migrate: true,
        timeoutClone: 1800,
        timeoutStartVm: 600,
    };
};

/**
 * Readiness, checked on the node through the guest agent, one deadline for all of it: the agent answers, the guest
 * reports its catalog IPv4 (proof that cloud-init applied the network), and cloud-init has finished (packages, keys).
 * `qm guest exec` exits 0 even when the command fails, and after --timeout (default 30 s) prints only {"pid": N}:
 * success is `"exited": 1` with exit code 0, or 2 (cloud-init finished with recoverable errors such as deprecated keys).
 */
export const waitScript = (id: number, ip: string | undefined, timeoutSeconds: number, vendorDataFileId: string): string => {
    const timedOut = (what: string) => `if [ "$(remaining)" -le 0 ]; then echo ${shq(`VM ${id}: ${what}`)} >&2; exit 1; fi`;
    const ipPhase = ip
        ? [
              `until qm guest cmd ${id} network-get-interfaces 2>/dev/null | grep -Eq ${shq(`"ip-address" *: *"${ip.replace(/\./g, "\\.")}"`)}; do`,
              `  ${timedOut(`the guest did not report ${ip} within ${timeoutSeconds}s; check its cloud-init network (ipconfig0), bridge and gateway`)}`,
              "  sleep 5",
              "done",
              `echo ${shq(`VM ${id}: has ${ip}`)}`,
          ]
        : [];
    return [
        "set -eu",
        `deadline=$(( $(date +%s) + ${timeoutSeconds} ))`,
        'remaining() { echo $(( deadline - $(date +%s) )); }',
        `until qm guest cmd ${id} ping >/dev/null 2>&1; do`,
        `  ${timedOut(`guest agent did not answer within ${timeoutSeconds}s; is qemu-guest-agent installed (vendor-data snippet ${vendorDataFileId})?`)}`,
        "  sleep 5",
        "done",
        `echo ${shq(`VM ${id}: guest agent answers`)}`,
        ...ipPhase,
        'left=$(remaining); if [ "$left" -lt 1 ]; then left=1; fi',
        `out=$(qm guest exec ${id} --timeout "$left" -- cloud-init status --wait) || { echo ${shq(`VM ${id}: qm guest exec failed:`)} "$out" >&2; exit 1; }`,
        `if ! printf '%s\\n' "$out" | grep -Eq '"exited" *: *1'; then echo ${shq(`VM ${id}: cloud-init did not finish within ${timeoutSeconds}s`)} >&2; exit 1; fi`,
        `code=$(printf '%s\\n' "$out" | sed -nE 's/.*"exitcode" *: *([0-9]+).*/\\1/p' | head -n 1)`,
        'case "$code" in',
        `  0) echo ${shq(`VM ${id}: cloud-init done`)} ;;`,
        `  2) echo ${shq(`VM ${id}: cloud-init done with recoverable errors (cloud-init status --long in the VM says which)`)} ;;`,
        `  *) echo ${shq(`VM ${id}: cloud-init failed, exit code`)} "\${code:-unknown}:" "$out" >&2; exit 1 ;;`,
        "esac",
    ].join("\n");
};

/**
 * SSH into the VM as its cloud-init user, through its node (the VM network may not be routable from where Pulumi
 * runs). Generous dial limits: sshd may still be starting when the first step runs.
 */
export const guestConnection = (
    ip: string,
    user: string,
    privateKey: pulumi.Input<string>,
    jumpHost: command.types.input.remote.ProxyConnectionArgs,
): command.types.input.remote.ConnectionArgs => ({ host: ip, port: 22, user, privateKey, dialErrorLimit: 60, perDialTimeout: 15, proxy: jumpHost });

/** The cloud-init user is a sudoer; scripts need root. Environment assignments come quoted from envAssignments. */
export const guestRunScript = (env: string): string => `sudo env ${env} bash -s`;

/**
 * The guest firewall's default input policy is DROP, and the in-guest steps arrive over SSH from the node: without this
 * rule they could not reach the VM. Limited to the node's address when it is an IPv4 literal (the firewall resolves no
 * host names); otherwise any source, the key being the guard.
 */
export const sshFromNodeRule = (nodeAddress: string): FirewallRuleSpec => ({
    type: "in",
    action: "ACCEPT",
    proto: "tcp",
    dport: "22",
    ...(isIpv4(nodeAddress) ? { source: nodeAddress } : {}),
    comment: "Phoenix: SSH from the Proxmox node for provisioning",
    enabled: true,
});

/**
 * The clone block's fields a VM carries out without a new clone: its storage (the disks move) and its node (it
 * migrates). plan --since never counts them as edits waiting for a replacement.
 */
export const CLONE_FIELDS_MOVED_IN_PLACE = ["clone.datastoreId", "clone.nodeName"] as const;

/** Steps that run inside the VM (over SSH); snapshots run on the node. */
const hasInGuestSteps = (spec: VmSpec): boolean => spec.features.length > 0 || spec.application !== undefined || spec.healthCheck !== undefined;

export class VmGuest extends PhoenixGuest {
    readonly vm: proxmox.VmLegacy;
    /**
     * The vendor-data snippet this VM boots with; its clones restate it (a clone's cloud-init drive is regenerated).
     * The id as a value (the snippet is a dependsOn): vendorDataFileId is ForceNew, and an input from the snippet
     * resource would condemn every VM when the snippet is replaced (it acts only at first boot anyway).
     */
    readonly vendorDataFileId: string;
    /** The template whose ID names the vendor-data file of this VM, its copies and its clones (the same on every node). */
    readonly vendorFamily: number;

    constructor(args: GuestArgs<VmSpec>, opts?: pulumi.ComponentResourceOptions) {
        super(`${TYPE_PREFIX}VmGuest`, args, opts);
        const spec = args.spec;
        const id = spec.id;
        const settings = this.ctx.settings;

        const source = spec.cloneSource !== undefined ? this.other(spec.cloneSource, "clone source") : undefined;
        if (source && !(source instanceof VmGuest)) {
            throw new pulumi.ResourceError(`guest ${id}: clone source ${spec.cloneSource} is not a VM`, this, true);
        }
        // Clones of one template are created one after another (clone lanes): parallel full clones of one disk fail.
        const laneWait = args.lanePredecessor !== undefined ? [this.other(args.lanePredecessor, "lane").machine] : [];

        let importFrom: string | undefined;
        // Proxmox reads the vendor data from the node the VM starts on (at every start), so each VM's node has it.
        // The downloaded files by id, as values, and their resources as dependsOn: a download or snippet replaced
        // (delete before replace) must not condemn the VMs built from it (§1: dependents whose inputs derive from it
        // are deleted first when their provider cannot rule out a replacement).
        const vendorWait: pulumi.Resource[] = [];
        if (source) {
            this.vendorFamily = source.vendorFamily;
            vendorWait.push(this.vendorDataOn(this.node, false));
        } else {
            this.vendorFamily = spec.copyOf ?? id;
            const image = this.download("image", "import", spec.image);
            importFrom = `${spec.image.storage}:import/${spec.image.fileName}`;
            vendorWait.push(image, this.vendorDataOn(this.node, true));
        }
        this.vendorDataFileId = `${this.ctx.catalog.defaults.storage.snippets}:snippets/${vendorDataFileName(this.vendorFamily)}`;

        this.vm = new proxmox.VmLegacy(
            `${id}-vm`,
            vmArgs(spec, {
                importFrom,
                clone: source ? { vmId: source.guestId, node: source.node } : undefined,
                vendorDataFileId: this.vendorDataFileId,
                sshPublicKeys: settings.sshPublicKeys(),
                password: spec.cloudInit.passwordSecret ? settings.secret(spec.cloudInit.passwordSecret) : undefined,
            }),
            // A VM with no in-guest step is gated at its creation, which starts it (or, for a template, converts it).
            // clone only matters when the VM is made: a clone that moves to a node with its own copy of the template
            // (a new source) or whose template moved is the same VM, never to be re-created for it; a storage change
            // moves the disks (disks[].datastoreId, initialization.datastoreId) instead of re-cloning. Every clone.*
            // field is ForceNew (VM:592-640): an edit of the source or of fullClone waits (plan --since shows it) until
            // the stack lists the guest in phoenix:allowReplace; then it replaces the VM. Storage and node stay held
            // back even then: they are carried out in place (move_disk, migration).
            {
                parent: this,
                dependsOn: [...laneWait, ...vendorWait, ...(source?.cloneSourceResources ?? []), ...this.gateFor("start")],
                deleteBeforeReplace: true,
                protect: this.protectMachine(),
                ...(source ? { ignoreChanges: settings.allowReplace.has(id) ? [...CLONE_FIELDS_MOVED_IN_PLACE] : ["clone"] } : {}),
            },
        );
        this.machine = this.vm;
        this.vmId = this.vm.vmId.apply((v) => v ?? id);
        if (spec.cloudInit.passwordSecret) this.warnPasswordSetOnce(spec.cloudInit.passwordSecret, spec.cloudInit.user);

        // Its firewall would never filter anything, and qm clone would copy it, unmanaged, into every clone.
        if (spec.template) {
            this.settle([this.vm]);
            return;
        }

        const inGuest = hasInGuestSteps(spec);
        if (inGuest && !this.ip) {
            // The catalog rejects this already (network.ip); kept so the component never builds an SSH step without a host.
            throw new pulumi.ResourceError(`guest ${id}: a VM with features, application or health check needs a static network.ip (they run over SSH)`, this, true);
        }
        const fwReset = source ? this.firewallReset() : [];
        const firewall = this.firewall("vmId", inGuest ? [sshFromNodeRule(settings.nodes.get(this.node)!.address)] : [], fwReset);
        const wait = this.nodeCommand(
            "wait",
            { create: waitScript(id, this.ip, spec.agentTimeoutSeconds, this.vendorDataFileId) },
            [],
        );
        const shell: GuestShell = this.ip
            ? {
                  connection: guestConnection(this.ip, spec.cloudInit.user, settings.guestSshPrivateKey, this.ctx.nodeJumpHost(this.node)),
                  runScript: guestRunScript,
                  runCommand: (cmd) => `sudo bash -c ${shq(cmd)}`,
              }
            : {
                  // Never used: a VM without an IP has no in-guest steps (checked above).
                  connection: this.ctx.nodeConnection(this.node),
                  runScript: () => {
                      throw new Error(`guest ${id}: no IP to run in-guest steps on`);
                  },
                  runCommand: () => {
                      throw new Error(`guest ${id}: no IP to run in-guest steps on`);
                  },
              };
        this.provision("qm", shell, [wait, ...firewall]);
    }

    /**
     * The cloud-init password reaches the VM once, when it is created: Proxmox returns it masked, and the provider then
     * suppresses every later change of it (bpg vm.go:979-982, the read storing the mask at :5145), so rotating the
     * stack secret would change nothing on the VM, silently. The user is told how to change it instead.
     */
    private warnPasswordSetOnce(key: string, user: string): void {
        void pulumi.log.warn(
            `guest ${this.guestId}: the cloud-init password (stack config ${key}) is set once, when the VM is created; the provider never sends a later ` +
                `change of it (Proxmox returns it masked). To change it, change it in the VM (ssh ${user}@<vm> sudo passwd ${user}); a new value of ${key} ` +
                "only reaches VMs created afterwards",
            this,
        );
    }

    /** HA may start the VM on another node, which reads its vendor data there at boot: the snippet goes there first. */
    protected override haPrerequisites(ha: HaSpec): pulumi.Resource[] {
        const own = this.vendorDataOn(this.node, false); // made already: the one the VM boots with
        const elsewhere = haCandidates(this.spec, ha, this.ctx.settings.nodes.keys()).filter((n) => n !== this.node);
        // On a shared snippets datastore every node reads the VM's own file: nothing more to wait for.
        return [...new Set(elsewhere.map((n) => this.vendorDataOn(n, false)))].filter((r) => r !== own);
    }

    /**
     * The family's vendor-data snippet on `node`, one resource per place. `own`: the snippet of a VM built from the
     * image on its own node; any other (a clone away from its template's node) is kept when that VM goes, since the
     * other VMs of the family on the node read the same file.
     */
    private vendorDataOn(node: string, own: boolean): proxmox.FileLegacy {
        const storage = this.ctx.catalog.defaults.storage.snippets;
        const fileName = vendorDataFileName(this.vendorFamily);
        return this.ctx.files.once(storage, node, `snippets/${fileName}`, () =>
            new proxmox.FileLegacy(
                node === this.node ? `${this.guestId}-vendor-data` : `${this.guestId}-vendor-data-${node}`,
                { nodeName: node, datastoreId: storage, contentType: "snippets", sourceRaw: { fileName, data: vendorDataYaml(this.vendorFamily) } },
                { parent: this, deleteBeforeReplace: true, ...(own ? {} : { retainOnDelete: true }) },
            ),
        );
    }
}
