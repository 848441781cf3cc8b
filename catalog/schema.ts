// The one source of truth for the catalog format: TypeScript types, validation and the editor JSON Schema
// (guests/schema.json, guests/defaults.schema.json) all come from these zod schemas. Every object is strict, so a
// misspelled key is an error instead of being silently ignored (the original's worst habit, phoenix-reference §2.0).
import { z } from "zod";

const ipv4Octets = (s: string): boolean => {
    const parts = s.split(".");
    return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255 && String(Number(p)) === p);
};
export const isIpv4 = ipv4Octets;
export const isIpv4Cidr = (s: string): boolean => {
    const [ip, prefix, ...rest] = s.split("/");
    return rest.length === 0 && ipv4Octets(ip) && prefix !== undefined && /^\d{1,2}$/.test(prefix) && Number(prefix) <= 32;
};

export const GuestId = z
    .number({ error: "expected a guest ID (integer 100..999999999)" })
    .int({ error: "expected a guest ID (integer 100..999999999)" })
    .min(100, { error: "expected a guest ID between 100 and 999999999 (Proxmox reserves 0..99)" })
    .max(999999999, { error: "expected a guest ID between 100 and 999999999" });

const Hostname = z
    .string()
    .regex(/^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/, {
        error: "expected a hostname: letters, digits and inner hyphens, labels of at most 63 characters",
    });
const Ipv4 = z.string().refine(ipv4Octets, { error: "expected an IPv4 address such as 10.0.0.1" });
const Ipv4Cidr = z.string().refine(isIpv4Cidr, { error: "expected an IPv4 address with prefix length, such as 10.0.0.10/24" });
const Mac = z
    .string()
    .regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, { error: "expected a MAC address such as BC:24:11:00:00:10" })
    .refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 0, { error: "expected a unicast MAC address (first octet even)" });
const ConfigKey = z
    .string()
    .regex(/^[a-z][A-Za-z0-9]*$/, { error: "expected a stack config key in camelCase, e.g. stepCaPassword" });
const EnvName = z.string().regex(/^[A-Z][A-Z0-9_]*$/, { error: "expected an UPPER_SNAKE environment name" });
const ParamValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]);
const Seconds = z.number().int().positive();

export const FirewallRule = z
    .strictObject({
        type: z.enum(["in", "out"]).describe("Direction of the rule."),
        action: z.enum(["ACCEPT", "DROP", "REJECT"]).describe("What to do with matching packets."),
        proto: z.string().optional().describe("Protocol (tcp, udp, icmp, ...). Default: any."),
        source: z.string().optional().describe("Source address, CIDR, alias or +ipset. Default: any."),
        dest: z.string().optional().describe("Destination address, CIDR, alias or +ipset. Default: any."),
        dport: z.string().regex(/^\d+([:,]\d+)*$/, { error: 'expected ports such as "22", "80,443" or "8000:8100"' }).optional()
            .describe("Destination port(s). Default: any."),
        sport: z.string().regex(/^\d+([:,]\d+)*$/, { error: 'expected ports such as "22", "80,443" or "8000:8100"' }).optional()
            .describe("Source port(s). Default: any."),
        macro: z.string().optional().describe("Proxmox firewall macro, e.g. SSH."),
        iface: z.string().optional().describe("Interface, e.g. net0. Default: all."),
        log: z.enum(["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog"]).optional()
            .describe("Log level. Default: nolog."),
        comment: z.string().optional().describe("Free text shown in the Proxmox UI."),
        enabled: z.boolean().default(true).describe("Default: true."),
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

export const Network = z
    .strictObject({
        ip: z.union([z.literal("dhcp"), Ipv4Cidr]).describe('IPv4 address with prefix ("10.0.0.10/24") or "dhcp".'),
        gateway: Ipv4.optional().describe("IPv4 gateway. Default: defaults.yaml network.gateway (not used with dhcp)."),
        mac: Mac.optional().describe("Fixed MAC address. Default: assigned by Proxmox."),
        bridge: z.string().optional().describe("Bridge. Default: defaults.yaml network.bridge."),
        vlan: z.number().int().min(1).max(4094).optional().describe("VLAN tag. Default: untagged."),
        nameservers: z.array(Ipv4).optional().describe("DNS servers. Default: defaults.yaml network.nameservers."),
        searchDomain: Hostname.optional().describe("DNS search domain. Default: defaults.yaml network.searchDomain."),
    })
    .describe("The first network interface (eth0 / net0). The firewall flag is always on.");

export const FeatureEntry = z.union([
    z.string().regex(/^[a-z][a-z0-9_]*$/, { error: "expected a feature name such as base_setup" }),
    z.strictObject({
        name: z.string().regex(/^[a-z][a-z0-9_]*$/, { error: "expected a feature name such as base_setup" })
            .describe("Script features/<name>.sh."),
        params: z.record(z.string().regex(/^[a-z][A-Za-z0-9]*$/, { error: "expected a camelCase parameter name" }), ParamValue)
            .default({})
            .describe("Parameters, camelCase; each reaches the script as the UPPER_SNAKE environment value its header declares."),
        secrets: z.record(EnvName, ConfigKey).default({})
            .describe("Secret parameters: script parameter name -> stack config key (set with pulumi config set --secret)."),
        caFrom: GuestId.optional()
            .describe("Guest whose Step-CA root certificate and fingerprint this step consumes (CA_ROOT_PEM, CA_FINGERPRINT, CA_URL)."),
        after: z.array(GuestId).default([])
            .describe("Guests that must be ready before this step (by default only the application and later steps wait)."),
    }),
]);

export const Application = z
    .strictObject({
        script: z.string().regex(/^[a-z][a-z0-9_]*$/).describe("Script features/apps/<script>.sh."),
        params: z.record(z.string().regex(/^[a-z][A-Za-z0-9]*$/), ParamValue).default({}).describe("As for features."),
        secrets: z.record(EnvName, ConfigKey).default({}).describe("As for features."),
    })
    .describe("The guest's application script, run after its features once its dependencies are ready.");

export const HealthCheck = z
    .strictObject({
        command: z.string().min(1).describe("Command run inside the guest; exit 0 means healthy."),
        retries: z.number().int().min(1).default(5).describe("Attempts before failing. Default: 5."),
        interval: Seconds.default(10).describe("Seconds between attempts. Default: 10."),
    })
    .describe("Health check run after the application script.");

const Startup = z
    .strictObject({
        order: z.number().int().min(0).describe("Boot order."),
        upDelay: z.number().int().min(0).default(0).describe("Seconds to wait after starting. Default: 0."),
        downDelay: z.number().int().min(0).default(0).describe("Seconds to wait after stopping. Default: 0."),
    })
    .describe("Proxmox startup order and delays.");

const TraefikService = z
    .strictObject({
        name: Hostname.describe("Router and host name: <name>.<searchDomain>."),
        port: z.number().int().min(1).max(65535),
        scheme: z.enum(["http", "https"]).default("https").describe("Backend scheme. Default: https."),
    })
    .describe("Expose this guest through the Traefik guest (routes are generated from the catalog).");

const common = {
    id: GuestId.describe("Proxmox VM/CT ID, fixed (never random)."),
    name: Hostname.describe("Guest name; also the hostname."),
    description: z.string().optional().describe("Shown in the Proxmox UI."),
    node: z.string().optional().describe("Proxmox node. Default: stack config phoenix:node."),
    tags: z.array(z.string().regex(/^[a-z0-9_-]+$/)).default([]).describe("Proxmox tags. Default: none."),
    protect: z.boolean().default(false).describe("Protect the guest from deletion by pulumi (stateful guests). Default: false."),
    template: z.boolean().default(false).describe("Convert the guest to a Proxmox template after its last step. Default: false."),
    cloneFrom: GuestId.optional().describe("Template guest to clone (same kind). Default: none (create from image/OS template)."),
    fullClone: z.boolean().default(true).describe("Full clone (true) or linked clone (false, needs storage support). Default: true."),
    dependsOn: z.array(GuestId).default([]).describe("Guests whose services this guest's application and health check need. Default: none."),
    cores: z.number().int().min(1).max(512).describe("CPU cores."),
    memoryMb: z.number().int().min(16).describe("Memory in MiB."),
    diskGb: z.number().int().min(1).describe("Root disk size in GiB."),
    storage: z.string().optional().describe("Datastore for the root disk. Default: defaults.yaml storage.lxc / storage.vm."),
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
};

/** A GPU's index on its node: the N of /dev/nvidia<N> (nvidia-smi's index). */
const GpuIndex = z.number({ error: "expected a GPU index (the N of /dev/nvidia<N>)" }).int().min(0).max(63);

const IdMap = z.strictObject({
    type: z.enum(["uid", "gid"]),
    containerId: z.number().int().min(0),
    hostId: z.number().int().min(0),
    size: z.number().int().min(1),
});

const BindMount = z.strictObject({
    hostPath: z.string().regex(/^\/\S*$/, { error: "expected an absolute host path" }).describe("Directory on the node."),
    containerPath: z.string().regex(/^\/\S*$/, { error: "expected an absolute path" }).describe("Mount point in the container."),
    readOnly: z.boolean().default(false).describe("Default: false."),
    owner: z.strictObject({ uid: z.number().int().min(0), gid: z.number().int().min(0) }).optional()
        .describe("Create the host directory owned by this container uid/gid (shifted by the container's id map)."),
});

const Volume = z.strictObject({
    path: z.string().regex(/^\/\S*$/, { error: "expected an absolute path" }).describe("Mount point in the container."),
    sizeGb: z.number().int().min(1),
    storage: z.string().optional().describe("Datastore. Default: the guest's storage."),
    backup: z.boolean().default(true).describe("Include in backups. Default: true."),
});

const OsTemplate = z.strictObject({
    file: z.string().describe("Template file name, e.g. ubuntu-24.04-standard_24.04-2_amd64.tar.zst."),
    storage: z.string().optional().describe("Datastore holding vztmpl content. Default: defaults.yaml storage.templates."),
    url: z.string().url().optional().describe("Download the template from here first (download.File). Default: expect it present."),
    checksum: z.string().optional(),
    checksumAlgorithm: z.enum(["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]).optional(),
});

export const LxcGuest = z
    .strictObject({
        kind: z.literal("lxc"),
        ...common,
        swapMb: z.number().int().min(0).default(0).describe("Swap in MiB. Default: 0."),
        unprivileged: z.boolean().default(true).describe("Unprivileged container. Default: true."),
        privilegedReason: z.string().optional().describe("Required when unprivileged is false: why this container needs it."),
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
        apparmorProfile: z.string().optional().describe("lxc.apparmor.profile, e.g. unconfined. Default: Proxmox's."),
        rawLxc: z.array(z.string().regex(/^lxc\.[a-z0-9_.]+\s*[:=]\s*\S.*$/, { error: 'expected a raw line such as "lxc.mount.auto: sys:rw"' }))
            .default([]).describe("Raw lxc.* lines added to /etc/pve/lxc/<id>.conf. Default: none."),
        waitForNetworkSeconds: Seconds.default(120).describe("Bound on the wait for the container's network after start. Default: 120."),
    })
    .describe("An LXC container.");

const CloudImage = z.strictObject({
    url: z.string().url(),
    fileName: z.string().regex(/\.(qcow2|raw|img)$/, { error: "expected a file name ending .qcow2, .raw or .img" }),
    checksum: z.string().optional(),
    checksumAlgorithm: z.enum(["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]).optional(),
    storage: z.string().optional().describe("Datastore with import content. Default: defaults.yaml storage.images."),
});

export const VmGuest = z
    .strictObject({
        kind: z.literal("vm"),
        ...common,
        image: CloudImage.optional().describe("Cloud image for a template VM. Default: defaults.yaml cloudImage."),
        cpuType: z.string().default("x86-64-v2-AES").describe("QEMU CPU type. Default: x86-64-v2-AES."),
        cloudInit: z.strictObject({
            user: z.string().regex(/^[a-z_][a-z0-9_-]*$/).optional().describe("Default user. Default: defaults.yaml cloudInitUser."),
            passwordSecret: ConfigKey.optional().describe("Stack config key of the user's password (secret). Default: key login only."),
        }).default({}).describe("cloud-init user; SSH keys come from stack config phoenix:sshPublicKeys."),
        nfsVolumes: z.array(z.strictObject({
            server: Ipv4.or(Hostname),
            export: z.string().regex(/^\/\S*$/),
            mountPoint: z.string().regex(/^\/\S*$/),
            options: z.string().default("defaults,_netdev,nofail"),
        })).default([]).describe("NFS mounts inside the VM."),
        agentTimeoutSeconds: Seconds.default(600).describe("Bound on the wait for the guest agent and IP. Default: 600."),
    })
    .describe("A QEMU virtual machine.");

export const Guest = z.discriminatedUnion("kind", [LxcGuest, VmGuest], { error: 'expected kind: lxc or kind: vm' });

/** What a Proxmox node has that guests use: its GPUs and the NVIDIA driver it runs (hardware only; access is stack config). */
export const NodeHardware = z
    .strictObject({
        gpus: z.array(z.strictObject({
            index: GpuIndex.describe("nvidia-smi's index on the node: the N of /dev/nvidia<N>."),
            model: z.string().optional().describe("What the GPU is, e.g. NVIDIA GeForce RTX 5090 (shown in the plan)."),
        })).default([])
            .superRefine((gpus, ctx) => gpus.forEach((g, i) => {
                if (gpus.findIndex((o) => o.index === g.index) < i) ctx.addIssue({ code: "custom", path: [i, "index"], message: `GPU ${g.index} is declared twice` });
            }))
            .describe("The node's NVIDIA GPUs. Default: none."),
        nvidiaDriver: z.string().regex(/^\d+\.\d+(\.\d+)?$/, { error: "expected an NVIDIA driver version such as 580.76.05" }).optional()
            .describe("NVIDIA driver installed on the node (nvidia-smi --query-gpu=driver_version); GPU containers install exactly this userspace version."),
        nvidiaCaps: z.array(z.number().int().min(1)).default([])
            .describe("/dev/nvidia-caps/nvidia-cap<N> present on the node (MIG), passed to every GPU container. Default: none."),
    })
    .describe("Hardware of one Proxmox node.");

export const Defaults = z
    .strictObject({
        storage: z.strictObject({
            lxc: z.string().describe("Datastore for container root disks."),
            vm: z.string().describe("Datastore for VM disks."),
            templates: z.string().describe("Datastore with vztmpl content (OS templates)."),
            images: z.string().describe("Datastore with import content (cloud images)."),
            snippets: z.string().describe("Datastore with snippets content (cloud-init vendor data)."),
        }),
        network: z.strictObject({
            bridge: z.string(),
            gateway: Ipv4,
            nameservers: z.array(Ipv4).min(1),
            searchDomain: Hostname,
        }),
        osTemplate: OsTemplate,
        cloudImage: CloudImage,
        cloudInitUser: z.string().regex(/^[a-z_][a-z0-9_-]*$/),
        nodes: z.record(z.string(), NodeHardware).default({})
            .describe("Hardware by Proxmox node name (the guests' node, default stack config phoenix:node): GPUs and NVIDIA driver."),
        featureParams: z.record(z.string(), z.record(z.string(), ParamValue)).default({})
            .describe("Default parameters per feature name, overridden by a guest's own params."),
    })
    .describe("Shared defaults for every guest in the catalog.");

export type GuestFile = z.output<typeof Guest>;
export type LxcGuestFile = z.output<typeof LxcGuest>;
export type VmGuestFile = z.output<typeof VmGuest>;
export type DefaultsFile = z.output<typeof Defaults>;
export type FirewallRuleSpec = z.output<typeof FirewallRule>;
export type FeatureEntrySpec = z.output<typeof FeatureEntry>;
export type NodeHardwareSpec = z.output<typeof NodeHardware>;
