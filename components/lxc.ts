// phoenix:index:LxcGuest — one container and every step of its life as child resources:
//   [os-template] [subids] [host-dirs] ct [resize] [lxc-conf] [fw-reset] fw-options [fw-rules] start
//   [snap-pre-configured] feature-* [app] [health] [snap-final-form] [template]          (resize, fw-reset: clones)
// The container is created stopped; raw lxc.* lines go into its config on the node; then it is started and the chain
// runs inside it through `pct exec` on the node.
import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@muhlba91/pulumi-proxmoxve";
import type { LxcSpec } from "../catalog/model";
import { RAW_LXC_RE } from "../catalog/schema";
import { TYPE_PREFIX } from "./context";
import { type GuestArgs, type GuestShell, PhoenixGuest } from "./guest";
import { shq } from "./shell";

/** The container's arguments, value by value from the catalog (pure: tested without the engine). */
export const containerArgs = (
    spec: LxcSpec,
    templateFileId: pulumi.Input<string> | undefined,
    clone?: { vmId: number; node: string },
    nodeName: pulumi.Input<string> = spec.node,
): proxmox.ContainerLegacyArgs => ({
    nodeName,
    vmId: spec.id,
    // The policy pack reads why a container is privileged from here: the catalog's reason travels with the guest.
    description: spec.unprivileged ? spec.description : [spec.description, `Privileged because: ${spec.privilegedReason}`].filter(Boolean).join("\n"),
    tags: [...new Set(["phoenix", ...spec.tags])].sort(), // Proxmox sorts tags: any other order is a perpetual diff
    ...(clone
        ? { clone: { vmId: clone.vmId, nodeName: clone.node, ...(spec.fullClone ? { datastoreId: spec.storage } : {}), full: spec.fullClone } }
        : { operatingSystem: { templateFileId: templateFileId!, type: spec.osType } }),
    unprivileged: spec.unprivileged,
    cpu: { cores: spec.cores },
    memory: { dedicated: spec.memoryMb, swap: spec.swapMb },
    disk: { datastoreId: spec.storage, size: spec.diskGb },
    features: { ...spec.pctFeatures },
    networkInterfaces: [
        { name: "eth0", bridge: spec.network.bridge, macAddress: spec.network.mac, vlanId: spec.network.vlan, firewall: true, enabled: true },
    ],
    initialization: {
        hostname: spec.name,
        ipConfigs: [{ ipv4: spec.network.ip === "dhcp" ? { address: "dhcp" } : { address: spec.network.ip, gateway: spec.network.gateway } }],
        dns: { domain: spec.network.searchDomain, servers: spec.network.nameservers },
    },
    idmaps: spec.idMaps.map((m) => ({ ...m })),
    mountPoints: [
        ...spec.bindMounts.map((b) => ({ volume: b.hostPath, path: b.containerPath, readOnly: b.readOnly, ...(b.shared ? { shared: true } : {}) })),
        ...spec.volumes.map((v) => ({ volume: v.storage ?? spec.storage, size: `${v.sizeGb}G`, path: v.path, backup: v.backup })),
    ],
    devicePassthroughs: gpuPassthroughs(spec.gpuDevices),
    startOnBoot: spec.startOnBoot,
    startup: spec.startup ? { ...spec.startup } : undefined,
    // Started by the start step after the raw config is written; converted to a template by a command, because the
    // provider's template argument forces a replacement.
    started: false,
    template: false,
    timeoutCreate: 1800,
    timeoutClone: 1800,
});

/**
 * GPU device nodes as Proxmox devN entries (PVE 8.2+), which work for unprivileged containers without raw cgroup
 * lines: Proxmox creates each node in the container and allows its major:minor (pve-container src/PVE/LXC.pm:769-787,
 * 1897-1920). Mode 0666 and owner root as on the node (the NVIDIA driver's default), so non-root services (ollama,
 * llama-server, vLLM) can open them; all three fields are stated because the provider reads them back with defaults
 * 0660/0/0 (bpg container.go:2993-3024, v0.111.1) and an unstated field would differ from what Proxmox stores.
 * A changed list is an in-place update, not a replacement (the schema has no ForceNew, container.go:872-914; the
 * update PUTs dev0..devN-1 and flags a reboot, :3889-3918); Proxmox hotplugs an added device into a running container
 * and keeps a changed one pending until restart (pve-container src/PVE/LXC/Config.pm:1729-1736). The update does not
 * delete devN entries past the new list's end, so after removing GPUs delete those with `pct set <id> --delete devN`
 * (README: GPU containers). Only root@pam may set devN (src/PVE/LXC.pm:1686-1687): program.ts checks the login.
 */
export const gpuPassthroughs = (paths: readonly string[]): proxmox.types.input.ContainerLegacyDevicePassthrough[] | undefined =>
    paths.length === 0 ? undefined : paths.map((path) => ({ path, mode: "0666", uid: 0, gid: 0, denyWrite: false }));

/** Host uid/gid of a container uid/gid: through the declared id map, else Proxmox's default unprivileged shift. */
export const hostId = (spec: LxcSpec, type: "uid" | "gid", id: number): number => {
    if (!spec.unprivileged) return id;
    const maps = spec.idMaps.filter((m) => m.type === type);
    if (maps.length === 0) return 100000 + id;
    const m = maps.find((x) => id >= x.containerId && id < x.containerId + x.size);
    if (!m) throw new Error(`guest ${spec.id}: ${type} ${id} is not covered by its idMaps`);
    return m.hostId + (id - m.containerId);
};

/**
 * Lines written into /etc/pve/lxc/<id>.conf (the provider has no argument for them), each as Proxmox writes it back
 * (pve-container Config.pm parse_pct_config reads `key: value` and `key = value`, write_pct_config writes
 * `key: value`): a line in any other form would differ from the file after Proxmox's next write, and the reconcile
 * would rewrite it (and reboot the container) on every run. Every key the catalog accepts (RAW_LXC_RE, hyphens as in
 * lxc.hook.pre-start included) is normalised.
 */
export const rawConfigLines = (spec: LxcSpec): string[] => [
    ...(spec.apparmorProfile ? [`lxc.apparmor.profile: ${spec.apparmorProfile}`] : []),
    ...spec.rawLxc.map((l) => {
        const [, key, value] = RAW_LXC_RE.exec(l)!; // the catalog accepted the line, so it matches
        return `${key}: ${value}`;
    }),
];

/** Edits of /etc/pve/lxc/<id>.conf hold Proxmox's own config lock, like pct does. */
const configLock = (id: number): string[] => ["mkdir -p /run/lock/lxc", `exec 9>/run/lock/lxc/pve-config-${id}.lock`, "flock -w 60 9"];

/**
 * Sets the raw lxc.* lines of the config's main section (before any [snapshot] section) to exactly `lines`, in order,
 * after Proxmox's own keys (where pct writes them): lines the catalog no longer has go, and so do the ones a clone
 * copied from its source (pct clone copies every config key). lxc.idmap lines are the provider's (idmaps) and stay.
 * A running container is rebooted when anything changed, so the lines take effect; nothing changed, nothing happens.
 */
export const rawConfigScript = (id: number, lines: string[]): string =>
    [
        "set -eu",
        `conf=/etc/pve/lxc/${id}.conf`,
        'tmp=$(mktemp)',
        'desired=$(mktemp)',
        "trap 'rm -f \"$tmp\" \"$desired\"' EXIT",
        "want() { printf '%s\\n' \"$1\" >> \"$desired\"; }",
        ...lines.map((line) => `want ${shq(line)}`),
        ...configLock(id),
        // Blank lines are held back so the desired lines go right after the last key, before the section's blank line.
        // Proxmox writes lxc.environment.runtime lines before all other lxc.* lines (write_pct_config), so they go
        // before the provider's lxc.idmap lines, and the rest after them.
        `awk -v desired="$desired" ${shq([
            String.raw`BEGIN { while ((getline l < desired) > 0) if (l ~ /^lxc\.environment\.runtime:/) env[++e] = l; else want[++n] = l }`,
            "function put_env() { for (i = 1; i <= e; i++) print env[i]; e = 0 }",
            "function put_all() { put_env(); for (i = 1; i <= n; i++) print want[i] }",
            "section { print; next }",
            String.raw`/^\[/ { put_all(); printf "%s", held; held = ""; section = 1; print; next }`,
            String.raw`/^[[:space:]]*$/ { held = held $0 "\n"; next }`,
            String.raw`/^lxc\.idmap(:|[[:space:]]*=)/ { printf "%s", held; held = ""; put_env(); print; next }`,
            String.raw`/^lxc\./ { next }`,
            '{ printf "%s", held; held = ""; print }',
            'END { if (!section) { put_all(); printf "%s", held } }',
        ].join("\n"))} "$conf" > "$tmp"`,
        `if cmp -s "$tmp" "$conf"; then changed=0; echo ${shq(`${id}: raw config already as the catalog says (${lines.length} line(s))`)};`,
        `else cat "$tmp" > "$conf"; changed=1; echo ${shq(`${id}: raw config set to the catalog's ${lines.length} line(s)`)}; fi`,
        // pct reboot takes the same config lock: release it first.
        "flock -u 9",
        `if [ "$changed" = 1 ] && pct status ${id} | grep -q 'status: running'; then pct reboot ${id}; echo '${id}: rebooted to apply the raw config'; fi`,
    ].join("\n");

/**
 * Host ids mapped outside root's default subordinate range (100000..165535) must be delegated to root in
 * /etc/subuid or /etc/subgid, or the container cannot start (newuidmap refuses the range).
 */
export const subIdScript = (spec: LxcSpec): string | undefined => {
    const outside = spec.idMaps.filter((m) => m.hostId < 100000 || m.hostId + m.size > 165536);
    if (!spec.unprivileged || outside.length === 0) return undefined;
    return [
        "set -eu",
        ...outside.map((m) => {
            const file = m.type === "uid" ? "/etc/subuid" : "/etc/subgid";
            const line = `root:${m.hostId}:${m.size}`;
            return `if grep -qxF ${shq(line)} ${file}; then echo ${shq(`${file} already has ${line}`)}; else echo ${shq(line)} >> ${file}; echo ${shq(`${file}: added ${line}`)}; fi`;
        }),
    ].join("\n");
};

/**
 * A clone keeps its source's root disk size (the provider's clone call sends none, §2.2), and the provider reads that
 * size back: grow it to the catalog's before the first start. A container disk cannot shrink, so a smaller catalog
 * size fails here with what to do (the catalog already refuses a clone smaller than its source).
 */
export const resizeScript = (id: number, sizeGb: number): string =>
    [
        "set -eu",
        `current=$(pct config ${id} | awk -F'size=' '/^rootfs:/ { split($2, a, ","); v = a[1]; u = substr(v, length(v)); n = v + 0; if (u == "T") n *= 1024; else if (u == "M") n /= 1024; printf "%d", n }')`,
        `if [ -z "$current" ]; then echo 'CT ${id}: no rootfs size in its config' >&2; exit 1; fi`,
        `if [ "$current" -gt ${sizeGb} ]; then echo "guest ${id}: its root disk is \${current}G, the catalog asks for ${sizeGb}G; a container disk cannot shrink: set diskGb to \${current} or more" >&2; exit 1; fi`,
        `if [ "$current" -eq ${sizeGb} ]; then echo '${id}: root disk already ${sizeGb}G'; exit 0; fi`,
        `pct resize ${id} rootfs ${sizeGb}G`,
        `echo '${id}: root disk grown to ${sizeGb}G'`,
    ].join("\n");

/** Start the container if needed, then wait (bounded) until it has an IPv4 address and a default route. */
export const startScript = (id: number, timeoutSeconds: number): string =>
    [
        "set -eu",
        `if pct status ${id} | grep -q 'status: running'; then echo '${id}: already running'; else pct start ${id}; fi`,
        `deadline=$(( $(date +%s) + ${timeoutSeconds} ))`,
        `until pct exec ${id} -- sh -c 'ip -4 -o addr show scope global | grep -q inet && ip -4 route show default | grep -q default'; do`,
        `  if [ "$(date +%s)" -ge "$deadline" ]; then echo "container ${id}: no IPv4 address and default route after ${timeoutSeconds}s; check its bridge, IP and gateway" >&2; exit 1; fi`,
        "  sleep 2",
        "done",
        `echo '${id}: network up'`,
    ].join("\n");

/**
 * Shuts the container down and converts it. A template's own device passthrough (its GPUs) is removed first: Proxmox
 * copies every devN entry into a clone (pve-container src/PVE/API2/LXC.pm:2120, "copy everything else") and the
 * provider only overwrites the clone's dev0..devN-1 with the clone's own list, so a clone would keep its template's
 * other GPUs (and show a diff on every read). Clones state their own devices.
 * The servers its features enabled (`units`, their scripts' `# @unit`) are stopped and disabled first: a clone would
 * otherwise boot its template's server (its model, at its GPU memory share) before its own steps run; a clone starts
 * a server through its own feature, which enables the unit again. The container is running here (the template's
 * last step ran in it); a retry after a failed conversion starts it again to reach its systemd.
 */
export const templateScript = (id: number, devices = 0, units: readonly string[] = []): string =>
    [
        "set -eu",
        `if pct config ${id} | grep -q '^template: 1'; then echo '${id}: already a template'; exit 0; fi`,
        ...(units.length > 0
            ? [
                  `if ! pct status ${id} | grep -q 'status: running'; then pct start ${id}; fi`,
                  `pct exec ${id} -- systemctl disable --now ${units.map(shq).join(" ")}`,
                  `echo ${shq(`${id}: stopped and disabled ${units.join(", ")}: a clone starts its own server through its own feature`)}`,
              ]
            : []),
        `pct shutdown ${id} --timeout 120 || pct stop ${id}`,
        ...(devices > 0
            ? [`pct set ${id} --delete ${Array.from({ length: devices }, (_, i) => `dev${i}`).join(",")}`, `echo '${id}: removed its device passthrough: its clones state their own'`]
            : []),
        `pct template ${id}`,
        `echo '${id}: converted to a template'`,
    ].join("\n");

export class LxcGuest extends PhoenixGuest {
    readonly container: proxmox.ContainerLegacy;

    constructor(args: GuestArgs<LxcSpec>, opts?: pulumi.ComponentResourceOptions) {
        super(`${TYPE_PREFIX}LxcGuest`, args, opts);
        const spec = args.spec;
        const id = spec.id;

        const source = spec.cloneSource !== undefined ? this.other(spec.cloneSource, "clone source") : undefined;
        const laneWait = args.lanePredecessor !== undefined ? [this.other(args.lanePredecessor, "lane").machine] : [];
        // A copy of a template with a fixed address waits until the copy before it is a template (stopped for good).
        const copyWait = spec.provisionAfter !== undefined ? this.other(spec.provisionAfter, "previous copy").readyResources : [];
        const os = spec.osTemplate;
        const download = !source && os.url ? this.download("os-template", "vztmpl", { ...os, url: os.url, fileName: os.file }) : undefined;
        // The file's id as a value, the download as a dependsOn: a new download (another URL or checksum) replaces the
        // file without condemning the container (operatingSystem is ForceNew: an input from the download would be).
        const templateFileId = `${spec.osTemplate.storage}:vztmpl/${spec.osTemplate.file}`;

        // Host preparation, before the container exists (so not bound to it, and never deleted: the data outlives it).
        const subIds = subIdScript(spec);
        const hostPrep = [
            ...(subIds ? [this.nodeCommand("subids", { create: subIds }, [], { guarded: false })] : []),
            ...(spec.bindMounts.length > 0
                ? [this.nodeCommand(
                      "host-dirs",
                      {
                          create: ["set -eu", ...spec.bindMounts.map((b) =>
                              b.owner
                                  ? `install -d -m 0750 -o ${hostId(spec, "uid", b.owner.uid)} -g ${hostId(spec, "gid", b.owner.gid)} ${shq(b.hostPath)}`
                                  : `mkdir -p ${shq(b.hostPath)}`,
                          )].join("\n"),
                      },
                      [],
                      { guarded: false },
                  )]
                : []),
        ];

        this.container = new proxmox.ContainerLegacy(
            `${id}-ct`,
            containerArgs(spec, templateFileId, source ? { vmId: source.guestId, node: source.node } : undefined, this.ctx.placement.nodeOf(spec)),
            {
                parent: this,
                dependsOn: [...laneWait, ...copyWait, ...hostPrep, ...(download ? [download] : []), ...(source?.cloneSourceResources ?? [])],
                deleteBeforeReplace: true,
                protect: this.protectMachine(),
                // started and template change on the node (start and template steps); a template's devices are removed
                // when it is converted (templateScript): not a diff to undo. clone only matters when the container is
                // made: a moved template is no reason to re-create its clones, and every clone.* field is ForceNew
                // (CT:239-268), so an edit of it (cloneFrom, fullClone) waits, shown by plan --since, until the stack
                // lists the guest in phoenix:allowReplace: then the edit replaces the container. A clone's disk size is
                // the resize step's: the provider stored the source's size at create and would resize again.
                ignoreChanges: [
                    "started",
                    "template",
                    ...(spec.template && spec.gpuDevices.length > 0 ? ["devicePassthroughs"] : []),
                    ...(source ? [...(this.ctx.settings.allowReplace.has(id) ? [] : ["clone"]), "disk.size"] : []),
                ],
            },
        );
        this.machine = this.container;
        this.vmId = this.container.vmId.apply((v) => v ?? id);

        // Raw lines, reconciled to the catalog's (none included: a clone drops what it copied from its source). The
        // script is the trigger: changed lines run it again. Delete before replace: a state written by an earlier
        // version holds a delete that removes the lines, and it must run before the reconcile, not after it.
        const conf = [this.nodeCommand("lxc-conf", { create: rawConfigScript(id, rawConfigLines(spec)) }, [], { deleteBeforeReplace: true })];
        const resize = source ? [this.nodeCommand("resize", { create: resizeScript(id, spec.diskGb) }, [])] : [];
        const fwReset = source ? this.firewallReset() : [];
        const firewall = this.firewall("containerId", [], fwReset);
        // A container with nothing else to gate starts only once its dependencies are ready (gatedStep).
        const start = this.nodeCommand("start", { create: startScript(id, spec.waitForNetworkSeconds) }, [...resize, ...conf, ...firewall, ...this.gateFor("start")]);

        const shell: GuestShell = {
            connection: this.ctx.nodeConnection(this.node),
            runScript: (env) => [this.templateGuard(), `pct exec ${id} -- env ${env} bash -s`].filter(Boolean).join("\n"),
            runCommand: (cmd) => `pct exec ${id} -- bash -c ${shq(cmd)}`,
        };
        this.provision("pct", shell, [start]);
    }

    /** Once a container is a template nothing can run on it: say how to rebuild it instead of failing obscurely. */
    protected override templateGuard(): string | undefined {
        const id = this.guestId;
        return this.spec.template
            ? `if pct config ${id} | grep -q '^template: 1'; then echo ${shq(`guest ${id} is already a template; to re-provision it, replace it: pulumi up --replace <urn of ${id}-ct>`)} >&2; exit 1; fi`
            : undefined;
    }

    protected override finish(prev: pulumi.Resource[]): void {
        if (!this.spec.template) return this.settle(prev);
        const devices = (this.spec as LxcSpec).gpuDevices.length;
        const units = [...new Set(this.spec.features.flatMap((f) => f.script.units))];
        const template = this.nodeCommand("template", { create: templateScript(this.guestId, devices, units) }, prev, { guarded: false });
        this.steps.push(template);
        this.warnIfStale();
        this.settle([template]);
    }
}
