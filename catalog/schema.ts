// The one source of truth for the catalog format: TypeScript types, validation and the editor JSON Schema
// (guests/schema.json, guests/defaults.schema.json) all come from these zod schemas. Every object is strict, so a
// misspelled key is an error instead of being silently ignored (the original's worst habit, phoenix-reference §2.0).
import { z } from "zod";
import {
    BridgeName, Checksum, ChecksumAlgorithm, ConfigKey, DownloadUrl, EnvName, HostAddress, Hostname, Ipv4, Ipv4Cidr, NodeName,
    ParamName, ScriptName, StorageId, Tag, UserName, absolutePath, checkChecksum, int, line, textBlock,
} from "./fields";
import {
    FIREWALL_ADDRESS_RE, FIREWALL_MACROS, IPV4_RE, MAX_FIREWALL_ADDRESS, PORT_LIST_RE, PROTOCOLS, PROTOCOLS_WITH_PORTS, PROTOCOL_VERSION,
    firewallAddressProblem, firewallAddressVersion, portListProblem,
} from "./net";

export const isIpv4 = (s: string): boolean => IPV4_RE.test(s);

export const GuestId = z
    .number({ error: "expected a guest ID (integer 100..999999999)" })
    .int({ error: "expected a guest ID (integer 100..999999999)" })
    .min(100, { error: "expected a guest ID between 100 and 999999999 (Proxmox reserves 0..99)" })
    .max(999999999, { error: "expected a guest ID between 100 and 999999999" });

const Mac = z
    .string()
    .regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, { error: "expected a MAC address such as BC:24:11:00:00:10", abort: true })
    .refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 0, { error: "expected a unicast MAC address (first octet even)" });
/** A script parameter's value; its format (the script header's format=) is checked when the step is resolved. */
const ParamValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]);
/**
 * Bounds of waits: each runs inside one step, and a step gets 30 minutes (customTimeouts in components/guest.ts);
 * a wait that outlasts it would end as Pulumi's timeout instead of the step's own message.
 */
const MAX_WAIT_SECONDS = 1500;
/** 4 TiB, qemu-server's ceiling for a VM's memory (Memory.pm get_max_mem); no node has more for a container either. */
const MAX_MEMORY_MB = 4 * 1024 * 1024;
/** 64 TiB: more than a node's datastore gives one disk, far below what would overflow a size anywhere. */
const MAX_DISK_GB = 64 * 1024;
/** Proxmox keeps a guest's description in its config file, up to 8 KiB (pve-container/qemu-server maxLength). */
export const MAX_DESCRIPTION = 8192;

// --- firewall ------------------------------------------------------------------------------------------------------

const firewallAddress = (what: string) =>
    z.string()
        .max(MAX_FIREWALL_ADDRESS, { error: `expected a ${what}, at most ${MAX_FIREWALL_ADDRESS} characters (Proxmox's limit)`, abort: true })
        .regex(FIREWALL_ADDRESS_RE, { error: `expected a ${what} as Proxmox reads it: an IPv4/IPv6 address, CIDR or range, a comma list of addresses or CIDRs, an alias name or +ipset`, abort: true })
        .superRefine((s, ctx) => {
            const problem = firewallAddressProblem(s);
            if (problem) ctx.addIssue({ code: "custom", message: problem });
        });
const portList = z.string()
    .regex(PORT_LIST_RE, { error: 'expected ports 1..65535 such as "22", "80,443" or "8000:8100"', abort: true })
    .superRefine((s, ctx) => {
        const problem = portListProblem(s);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
    });

export const FirewallRule = z
    .strictObject({
        type: z.enum(["in", "out"]).describe("Direction of the rule."),
        action: z.enum(["ACCEPT", "DROP", "REJECT"]).describe("What to do with matching packets."),
        proto: z.enum(PROTOCOLS as [string, ...string[]], { error: "expected a protocol name of /etc/protocols (tcp, udp, icmp, icmpv6, ...) or its number, quoted" })
            .optional().describe("Protocol (tcp, udp, icmp, ...) or its number, as in /etc/protocols. Default: any."),
        source: firewallAddress("source").optional().describe("Source address, CIDR, range, list, alias or +ipset. Default: any."),
        dest: firewallAddress("destination").optional().describe("Destination address, CIDR, range, list, alias or +ipset. Default: any."),
        dport: portList.optional().describe("Destination port(s), with proto tcp, udp, udplite, dccp or sctp. Default: any."),
        sport: portList.optional().describe("Source port(s), with proto tcp, udp, udplite, dccp or sctp. Default: any."),
        macro: z.enum(FIREWALL_MACROS, { error: "expected a Proxmox firewall macro such as SSH, HTTP or DNS, spelled as Proxmox does" })
            .optional().describe("Proxmox firewall macro, e.g. SSH."),
        iface: z.literal("net0", { error: "expected net0, the one interface Phoenix gives a guest" }).optional()
            .describe("Interface: net0 (the only one Phoenix configures). Default: all."),
        log: z.enum(["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog"]).optional()
            .describe("Log level. Default: nolog."),
        comment: line(1024, "a comment").optional().describe("Free text shown in the Proxmox UI (one line)."),
        enabled: z.boolean().default(true).describe("Default: true."),
    })
    .superRefine((r, ctx) => {
        // pve-firewall verify_rule: ports need a protocol that has them, and one rule speaks one IP version.
        for (const field of ["dport", "sport"] as const) {
            if (r[field] !== undefined && !PROTOCOLS_WITH_PORTS.has(r.proto ?? "")) {
                ctx.addIssue({ code: "custom", path: [field], message: `needs proto tcp, udp, udplite, dccp or sctp (${r.proto ? `${r.proto} has no ports` : "proto is not set"})` });
            }
        }
        const versions = [
            ...(r.proto && PROTOCOL_VERSION[r.proto] ? [[PROTOCOL_VERSION[r.proto], "proto"] as const] : []),
            ...(["source", "dest"] as const).flatMap((f) => (r[f] && firewallAddressVersion(r[f]!) ? [[firewallAddressVersion(r[f]!)!, f] as const] : [])),
        ];
        const mixed = versions.find(([v]) => v !== versions[0][0]);
        if (mixed) ctx.addIssue({ code: "custom", path: [mixed[1]], message: `IPv${mixed[0]} here, but ${versions[0][1]} is IPv${versions[0][0]}; Proxmox refuses mixed IPv4/IPv6 in one rule` });
    })
    .describe("One guest firewall rule, applied in catalog order.");

export const Firewall = z
    .strictObject({
        enabled: z.boolean().default(true).describe("Enable the guest firewall (its options). Default: true."),
        inputPolicy: z.enum(["ACCEPT", "DROP", "REJECT"]).default("DROP").describe("Default: DROP."),
        outputPolicy: z.enum(["ACCEPT", "DROP", "REJECT"]).default("ACCEPT").describe("Default: ACCEPT."),
        rules: z.array(FirewallRule).default([]).describe("Rules in order. Default: none."),
    })
    .describe("Guest-level Proxmox firewall.");

/** resolv.conf takes three name servers (glibc MAXNS); a fourth would be silently ignored. */
const nameservers = z.array(Ipv4).min(1, { error: "expected 1 to 3 name servers" }).max(3, { error: "expected 1 to 3 name servers (resolv.conf uses no more)" });

export const Network = z
    .strictObject({
        ip: z.union([z.literal("dhcp"), Ipv4Cidr]).describe('IPv4 address with prefix ("10.0.0.10/24") or "dhcp".'),
        gateway: Ipv4.optional().describe("IPv4 gateway. Default: defaults.yaml network.gateway (not used with dhcp)."),
        mac: Mac.optional().describe("Fixed MAC address. Default: assigned by Proxmox."),
        bridge: BridgeName.optional().describe("Bridge. Default: defaults.yaml network.bridge."),
        vlan: int(1, 4094, "a VLAN tag").optional().describe("VLAN tag. Default: untagged."),
        nameservers: nameservers.optional().describe("DNS servers (at most 3). Default: defaults.yaml network.nameservers."),
        searchDomain: Hostname.optional().describe("DNS search domain. Default: defaults.yaml network.searchDomain."),
    })
    .describe("The first network interface (eth0 / net0). The firewall flag is always on.");

const Params = z.record(ParamName, ParamValue);

export const FeatureEntry = z.union([
    ScriptName,
    z.strictObject({
        name: ScriptName.describe("Script features/<name>.sh."),
        params: Params
            .default({})
            .describe("Parameters, camelCase; each reaches the script as the UPPER_SNAKE environment value its header declares."),
        secrets: z.record(EnvName, ConfigKey).default({})
            .describe("Secret parameters: script parameter name -> stack config key (set with pulumi config set --secret)."),
        caFrom: GuestId.optional()
            .describe("Guest whose Step-CA root certificate and fingerprint this step consumes (CA_ROOT_PEM, CA_FINGERPRINT, CA_URL)."),
        after: z.array(GuestId).default([])
            .describe("Guests that must be ready before this step (dependsOn gates only the guest's first step that can use them)."),
    }),
]);

export const Application = z
    .strictObject({
        script: ScriptName.describe("Script features/apps/<script>.sh."),
        params: Params.default({}).describe("As for features."),
        secrets: z.record(EnvName, ConfigKey).default({}).describe("As for features."),
    })
    .describe("The guest's application script, run after its features once its dependencies are ready.");

export const HealthCheck = z
    .strictObject({
        command: textBlock(4096, "a shell command").min(1, { error: "expected a shell command" })
            .describe("Command run inside the guest (bash -c); exit 0 means healthy."),
        retries: int(1, 100, "a number of attempts").default(5).describe("Attempts before failing. Default: 5."),
        interval: int(1, 600, "seconds between attempts").default(10).describe("Seconds between attempts. Default: 10."),
    })
    .superRefine((h, ctx) => {
        if (h.retries * h.interval > MAX_WAIT_SECONDS) {
            ctx.addIssue({ code: "custom", path: ["retries"], message: `${h.retries} attempts ${h.interval}s apart wait ${h.retries * h.interval}s; keep retries × interval within ${MAX_WAIT_SECONDS}s (the step's 30-minute limit)` });
        }
    })
    .describe("Health check run after the application script.");

const Startup = z
    .strictObject({
        order: int(0, 99999, "a boot order").describe("Boot order."),
        upDelay: int(0, 3600, "seconds").default(0).describe("Seconds to wait after starting (at most an hour). Default: 0."),
        downDelay: int(0, 3600, "seconds").default(0).describe("Seconds to wait after stopping (at most an hour). Default: 0."),
    })
    .describe("Proxmox startup order and delays.");

const TraefikService = z
    .strictObject({
        name: Hostname.describe("Router and host name: <name>.<searchDomain>."),
        port: int(1, 65535, "a port"),
        scheme: z.enum(["http", "https"]).default("https").describe("Backend scheme. Default: https."),
    })
    .describe("Expose this guest through the Traefik guest (routes are generated from the catalog).");

const Ha = z
    .strictObject({
        state: z.enum(["started", "ignored"]).default("started")
            .describe("started: HA keeps the guest running (restart, then relocation); ignored: HA leaves it alone (maintenance). Default: started."),
        maxRestart: z.number().int().min(0).max(10).default(1).describe("Restarts on the same node before relocating. Default: 1."),
        maxRelocate: z.number().int().min(0).max(10).default(1).describe("Relocations to another node before giving up. Default: 1."),
        nodes: z.record(NodeName, z.number().int().min(0).max(1000)).optional()
            .describe("Preferred nodes with their priority (higher first), e.g. { pve1: 2, pve2: 1 }; the guest's own node must have the highest. Default: any node."),
        strict: z.boolean().default(false).describe("Run only on the nodes listed in ha.nodes. Default: false."),
        replicated: z.boolean().default(false)
            .describe("The guest's disks are replicated to the other nodes (Proxmox storage replication, set up outside Phoenix), so HA may recover it from local storage (its disks only: a bind mount is not replicated, see bindMounts shared). Default: false."),
    })
    .describe("Put the guest under Proxmox HA once its health check has passed: restarted on failure, recovered on another node when its node fails.");

const common = {
    id: GuestId.describe("Proxmox VM/CT ID, fixed (never random)."),
    name: Hostname.describe("Guest name; also the hostname."),
    description: textBlock(MAX_DESCRIPTION, "a description").optional().describe("Shown in the Proxmox UI (at most 8192 characters)."),
    node: NodeName.optional().describe("Proxmox node. Default: stack config phoenix:node."),
    nodes: z.record(NodeName, GuestId).optional()
        .describe("A template kept on several nodes, one ID per node, e.g. { pve1: 900, pve2: 901 } (with this guest's own node and ID): each node's clones use their local copy."),
    tags: z.array(Tag).default([]).describe("Proxmox tags. Default: none."),
    protect: z.boolean().default(true)
        .describe("Protect the guest's container or VM: pulumi refuses to replace or delete it unless stack config phoenix:allowReplace lists the guest. Default: true; false opts out."),
    template: z.boolean().default(false).describe("Convert the guest to a Proxmox template after its last step. Default: false."),
    cloneFrom: GuestId.optional().describe("Template guest to clone (same kind). Default: none (create from image/OS template)."),
    fullClone: z.boolean().default(true).describe("Full clone (true) or linked clone (false, needs storage support). Default: true."),
    dependsOn: z.array(GuestId).default([]).describe("Guests whose services this guest needs: they gate its first step that can use them (the application or health check, else the first feature, else the start). Default: none."),
    cores: int(1, 512, "CPU cores").describe("CPU cores."),
    memoryMb: int(16, MAX_MEMORY_MB, "memory in MiB").describe("Memory in MiB (16 MiB to 4 TiB)."),
    diskGb: int(1, MAX_DISK_GB, "a disk size in GiB").describe("Root disk size in GiB (at most 64 TiB)."),
    storage: StorageId.optional().describe("Datastore for the root disk. Default: defaults.yaml storage.lxc / storage.vm."),
    network: Network,
    firewall: Firewall.default({ enabled: true, inputPolicy: "DROP", outputPolicy: "ACCEPT", rules: [] }),
    startOnBoot: z.boolean().default(false).describe("Start when the node boots. Default: false."),
    startup: Startup.optional(),
    features: z.array(FeatureEntry).default([]).describe("Feature scripts, run in order inside the guest. Default: none."),
    application: Application.optional(),
    healthCheck: HealthCheck.optional(),
    lifecycleSnapshots: z.boolean().default(false)
        .describe("Take snapshots pre-configured (before features) and final-form (after the health check). Default: false."),
    traefikService: TraefikService.optional(),
    ha: Ha.optional(),
};

/** A GPU's index on its node: the N of /dev/nvidia<N> (nvidia-smi's index). */
const GpuIndex = int(0, 63, "a GPU index (the N of /dev/nvidia<N>)");

/** A container uid/gid: an unprivileged container's maps cover exactly 0..65535. */
const ContainerId = (what: string) => int(0, 65535, what);
/**
 * Host side of an id map: the kernel refuses a range whose end overflows 32 bits (user_namespace.c: first + count
 * must not wrap), and (uid_t)-1 is no id: so hostId + size <= 4294967295.
 */
const MAX_HOST_ID = 4294967295;
const IdMap = z.strictObject({
    type: z.enum(["uid", "gid"]),
    containerId: ContainerId("a container uid/gid"),
    hostId: int(0, MAX_HOST_ID - 1, "a host uid/gid"),
    size: int(1, 65536, "a range size"),
}).superRefine((m, ctx) => {
    if (m.hostId + m.size > MAX_HOST_ID) ctx.addIssue({ code: "custom", path: ["size"], message: `host ids ${m.hostId}..${m.hostId + m.size - 1} pass 4294967294, the last id a map can reach` });
});

const BindMount = z.strictObject({
    hostPath: absolutePath("a host directory").describe("Directory on the node."),
    containerPath: absolutePath("a mount point").describe("Mount point in the container."),
    readOnly: z.boolean().default(false).describe("Default: false."),
    shared: z.boolean().default(false).describe(
        "The host directory is on a filesystem every node mounts at this same path (CephFS, NFS): the mount point is marked shared, so Proxmox " +
            "leaves it in place when the container migrates or HA recovers it on another node. Default: false (a directory on this node only).",
    ),
    owner: z.strictObject({ uid: ContainerId("a container uid"), gid: ContainerId("a container gid") }).optional()
        .describe("Create the host directory owned by this container uid/gid (shifted by the container's id map)."),
});

const Volume = z.strictObject({
    path: absolutePath("a mount point").describe("Mount point in the container."),
    sizeGb: int(1, MAX_DISK_GB, "a volume size in GiB"),
    storage: StorageId.optional().describe("Datastore. Default: the guest's storage."),
    backup: z.boolean().default(true).describe("Include in backups. Default: true."),
});

const OsTemplate = z.strictObject({
    // pve-storage parses vztmpl volumes as vztmpl/<file>.tar.(gz|xz|zst|bz2).
    file: z.string().max(255, { error: "expected a file name, at most 255 characters", abort: true })
        .regex(/^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.tar\.(gz|xz|zst|bz2)$/, { error: "expected a template file name ending .tar.gz, .tar.xz, .tar.zst or .tar.bz2" })
        .describe("Template file name, e.g. ubuntu-24.04-standard_24.04-2_amd64.tar.zst."),
    storage: StorageId.optional().describe("Datastore holding vztmpl content. Default: defaults.yaml storage.templates."),
    url: DownloadUrl.optional().describe("Download the template from here first (download.File). Default: expect it present."),
    checksum: Checksum.optional().describe("Hex digest of the download, with checksumAlgorithm (without one nothing verifies the download, and pulumi up and the plan warn)."),
    checksumAlgorithm: ChecksumAlgorithm.optional(),
}).superRefine(checkChecksum);

/**
 * pve-container Config.pm: the lxc.* keys Proxmox keeps ($valid_lxc_conf_keys, plus lxc.cgroup2.*, lxc.prlimit.*,
 * lxc.net.*). Left out: keys Phoenix writes from their own fields (lxc.apparmor.profile: apparmorProfile; lxc.idmap:
 * idMaps, which the provider rewrites), and the two Proxmox refuses (lxc.rootfs.path, lxc.rootfs.options).
 */
const LXC_KEYS = new Set([
    "apparmor.allow_incomplete", "apparmor.allow_nesting", "apparmor.raw", "selinux.context", "include", "arch", "uts.name",
    "signal.halt", "signal.reboot", "signal.stop", "init.cmd", "init.cwd", "init.uid", "init.gid", "init.groups", "pty.max",
    "console.logfile", "console.path", "tty.max", "devtty.dir", "hook.autodev", "autodev", "kmsg", "mount.fstab",
    "mount.entry", "mount.auto", "rootfs.mount", "cap.drop", "cap.keep", "seccomp.profile", "seccomp.notify.proxy",
    "seccomp.notify.cookie", "hook.pre-start", "hook.pre-mount", "hook.mount", "hook.start", "hook.stop", "hook.post-stop",
    "hook.clone", "hook.destroy", "hook.version", "log.level", "log.file", "start.auto", "start.delay", "start.order",
    "group", "environment", "environment.runtime", "environment.hooks", "sysctl.fs.mqueue", "sysctl.kernel.msgmax",
    "sysctl.kernel.msgmnb", "sysctl.kernel.msgmni", "sysctl.kernel.sem", "sysctl.kernel.shmall", "sysctl.kernel.shmmax",
    "sysctl.kernel.shmmni", "sysctl.kernel.shm_rmid_forced",
].map((k) => `lxc.${k}`));
const OWN_FIELD: Record<string, string> = { "lxc.apparmor.profile": "apparmorProfile", "lxc.idmap": "idMaps" };
const lxcKeyProblem = (key: string): string | undefined => {
    if (OWN_FIELD[key]) return `set ${key} with ${OWN_FIELD[key]}, not as a raw line`;
    if (LXC_KEYS.has(key) || /^lxc\.(cgroup2|prlimit|net)\.[a-z0-9_.-]+$/.test(key)) return undefined;
    return `${key} is not a key Proxmox keeps in a container config (pve-container Config.pm: deprecated, unsupported or misspelled)`;
};
/**
 * `key: value` or `key = value`; the value one line, no surrounding blanks (Proxmox trims them when it rewrites the
 * file). Groups: the key, the value (components/lxc.ts writes every accepted line as `key: value`, as Proxmox does).
 */
export const RAW_LXC_RE = /^(lxc\.[a-z0-9_.-]+)\s*[:=]\s*([^\x00-\x1f\x7f-\x9f\u2028\u2029\s]([^\x00-\x1f\x7f-\x9f\u2028\u2029]*[^\x00-\x1f\x7f-\x9f\u2028\u2029\s])?)$/;
const RawLxcLine = z.string()
    .regex(RAW_LXC_RE, { error: 'expected one raw line such as "lxc.mount.auto: sys:rw" (no control characters)', abort: true })
    .superRefine((l, ctx) => {
        const problem = lxcKeyProblem(RAW_LXC_RE.exec(l)![1]);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
    });

export const LxcGuest = z
    .strictObject({
        kind: z.literal("lxc"),
        ...common,
        swapMb: int(0, MAX_MEMORY_MB, "swap in MiB").default(0).describe("Swap in MiB. Default: 0."),
        unprivileged: z.boolean().default(true).describe("Unprivileged container. Default: true."),
        privilegedReason: line(1024, "a reason").optional().describe("Required when unprivileged is false: why this container needs it (one line)."),
        osType: z.enum(["ubuntu", "debian", "alpine", "centos", "fedora", "archlinux", "unmanaged"]).default("ubuntu"),
        osTemplate: OsTemplate.optional().describe("OS template for a new container. Default: defaults.yaml osTemplate."),
        pctFeatures: z.strictObject({
            nesting: z.boolean().default(false),
            keyctl: z.boolean().default(false),
            fuse: z.boolean().default(false),
        }).default({ nesting: false, keyctl: false, fuse: false }).describe("Proxmox container feature flags. Default: all off."),
        idMaps: z.array(IdMap).default([]).describe("Custom uid/gid maps, written exactly as declared. Default: none."),
        bindMounts: z.array(BindMount).default([]).describe("Host directories bind-mounted into the container."),
        volumes: z.array(Volume).default([]).describe("Extra storage volumes."),
        gpus: z.array(GpuIndex).default([])
            .describe("NVIDIA GPUs of the node passed through, by index (declared in defaults.yaml nodes.<node>.gpus): /dev/nvidia<N> each, plus nvidiactl, nvidia-uvm, nvidia-uvm-tools and the node's nvidiaCaps. Default: none."),
        // AppArmor profile names as lxc takes them (unconfined, generated, lxc-container-default-cgns, a custom one).
        apparmorProfile: z.string().max(255, { error: "expected a profile name, at most 255 characters", abort: true })
            .regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/, { error: "expected an AppArmor profile name such as unconfined (letters, digits and _.+-)" })
            .optional().describe("lxc.apparmor.profile, e.g. unconfined. Default: Proxmox's."),
        rawLxc: z.array(RawLxcLine)
            .default([]).describe("Raw lxc.* lines added to /etc/pve/lxc/<id>.conf (keys Proxmox keeps; root on the node can run lxc.hook.* commands). Default: none."),
        waitForNetworkSeconds: int(1, MAX_WAIT_SECONDS, "seconds").default(120).describe("Bound on the wait for the container's network after start. Default: 120."),
    })
    .describe("An LXC container.");

const CloudImage = z.strictObject({
    url: DownloadUrl,
    fileName: z.string().max(255, { error: "expected a file name, at most 255 characters", abort: true })
        .regex(/^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.(qcow2|raw|img)$/, { error: "expected a file name of letters, digits and _.+- ending .qcow2, .raw or .img" }),
    checksum: Checksum.optional().describe("Hex digest of the download, with checksumAlgorithm (without one nothing verifies the download, and pulumi up and the plan warn)."),
    checksumAlgorithm: ChecksumAlgorithm.optional(),
    storage: StorageId.optional().describe("Datastore with import content. Default: defaults.yaml storage.images."),
}).superRefine(checkChecksum);

/** fstab mount options: comma-separated option[=value], nothing that could end the field or the line. */
const MountOptions = z.string().max(1024, { error: "expected mount options, at most 1024 characters", abort: true })
    .regex(/^[A-Za-z0-9_.:/-]+(=[A-Za-z0-9_.:/-]*)?(,[A-Za-z0-9_.:/-]+(=[A-Za-z0-9_.:/-]*)?)*$/, { error: "expected comma-separated mount options such as defaults,_netdev,nofail" });

export const VmGuest = z
    .strictObject({
        kind: z.literal("vm"),
        ...common,
        image: CloudImage.optional().describe("Cloud image for a template VM. Default: defaults.yaml cloudImage."),
        // The model is the first field of Proxmox's `cpu: <model>,flags=...`: no commas or '='.
        cpuType: z.string().max(64, { error: "expected a CPU type, at most 64 characters", abort: true })
            .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: "expected a QEMU CPU type such as x86-64-v2-AES, host or custom-<name>" })
            .default("x86-64-v2-AES").describe("QEMU CPU type. Default: x86-64-v2-AES."),
        cloudInit: z.strictObject({
            user: UserName.optional().describe("Default user. Default: defaults.yaml cloudInitUser."),
            passwordSecret: ConfigKey.optional().describe("Stack config key of the user's password (secret). Default: key login only."),
        }).default({}).describe("cloud-init user; SSH keys come from stack config phoenix:sshPublicKeys."),
        nfsVolumes: z.array(z.strictObject({
            server: HostAddress.describe("NFS server: IPv4 address or DNS name."),
            export: absolutePath("an export path").describe("Exported directory on the server."),
            mountPoint: absolutePath("a mount point").describe("Mount point in the VM."),
            options: MountOptions.default("defaults,_netdev,nofail").describe("fstab mount options. Default: defaults,_netdev,nofail."),
        })).default([]).describe("NFS mounts inside the VM (fstab lines)."),
        agentTimeoutSeconds: int(1, MAX_WAIT_SECONDS, "seconds").default(600).describe("Bound on the wait for the guest agent and IP. Default: 600."),
    })
    .describe("A QEMU virtual machine.");

export const Guest = z.discriminatedUnion("kind", [LxcGuest, VmGuest], { error: 'expected kind: lxc or kind: vm' });

/** What a Proxmox node has that guests use: its GPUs and the NVIDIA driver it runs (hardware only; access is stack config). */
export const NodeHardware = z
    .strictObject({
        gpus: z.array(z.strictObject({
            index: GpuIndex.describe("nvidia-smi's index on the node: the N of /dev/nvidia<N>."),
            model: line(256, "a GPU model").optional().describe("What the GPU is, e.g. NVIDIA GeForce RTX 5090 (shown in the plan)."),
        })).default([])
            .superRefine((gpus, ctx) => gpus.forEach((g, i) => {
                if (gpus.findIndex((o) => o.index === g.index) < i) ctx.addIssue({ code: "custom", path: [i, "index"], message: `GPU ${g.index} is declared twice` });
            }))
            .describe("The node's NVIDIA GPUs. Default: none."),
        nvidiaDriver: z.string().regex(/^\d+\.\d+(\.\d+)?$/, { error: "expected an NVIDIA driver version such as 580.76.05" }).optional()
            .describe("NVIDIA driver installed on the node (nvidia-smi --query-gpu=driver_version); GPU containers install exactly this userspace version."),
        nvidiaCaps: z.array(int(1, 65535, "an nvidia-cap number")).default([])
            .describe("/dev/nvidia-caps/nvidia-cap<N> present on the node (MIG), passed to every GPU container. Default: none."),
    })
    .describe("Hardware of one Proxmox node.");

export const Defaults = z
    .strictObject({
        storage: z.strictObject({
            lxc: StorageId.describe("Datastore for container root disks."),
            vm: StorageId.describe("Datastore for VM disks."),
            templates: StorageId.describe("Datastore with vztmpl content (OS templates)."),
            images: StorageId.describe("Datastore with import content (cloud images)."),
            snippets: StorageId.describe("Datastore with snippets content (cloud-init vendor data)."),
        }),
        network: z.strictObject({
            bridge: BridgeName,
            gateway: Ipv4,
            nameservers,
            searchDomain: Hostname,
        }),
        osTemplate: OsTemplate,
        cloudImage: CloudImage,
        cloudInitUser: UserName,
        nodes: z.record(NodeName, NodeHardware).default({})
            .describe("Hardware by Proxmox node name (the guests' node, default stack config phoenix:node): GPUs and NVIDIA driver."),
        featureParams: z.record(ScriptName, Params).default({})
            .describe("Default parameters per feature name, overridden by a guest's own params."),
        datastores: z.record(StorageId, z.strictObject({
            shared: z.boolean().default(false).describe("The same storage on every node it is on (NFS, Ceph, ...): Proxmox's shared flag. Default: false."),
            nodes: z.array(NodeName).min(1).optional().describe("Nodes the datastore is on (Proxmox's nodes restriction). Default: every node."),
        })).default({})
            .describe("How datastores are shared across the cluster's nodes (for cross-node clones, migrations and HA). A datastore not listed is local to each node and on every node."),
    })
    .describe("Shared defaults for every guest in the catalog.");

export type GuestFile = z.output<typeof Guest>;
export type LxcGuestFile = z.output<typeof LxcGuest>;
export type VmGuestFile = z.output<typeof VmGuest>;
export type DefaultsFile = z.output<typeof Defaults>;
export type FirewallRuleSpec = z.output<typeof FirewallRule>;
export type FeatureEntrySpec = z.output<typeof FeatureEntry>;
export type NodeHardwareSpec = z.output<typeof NodeHardware>;
export type HaSpec = z.output<typeof Ha>;
