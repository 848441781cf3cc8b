// One VM of phoenix_vm_configs.json -> one catalog guest (kind: vm).
import { type ImportContext, ipOf, missingScripts } from "./context";
import { mapFirewall } from "./firewall";
import { listOf, mapBoot, mapDependencies, mapNetwork, mapTraefikService, reportUnknownKeys } from "./common";
import { type GuestImport, type Note, type Obj, compact, guestFileName, note } from "./model";
import { type SecretScope, SECRET_KEY, recordSecret, secretScope } from "./secrets";
import { at, isObj, num, str } from "./source";
import { mapFeatures, mapHealthCheck } from "./steps";
import { cloudImage } from "./defaults";
import { fillOriginalDefaults } from "./originalDefaults";
import { applyInvalid } from "./invalid";

const HANDLED = [
    "vmid", "name", "is_template", "clone_from_vmid", "template_image", "template_snapshot_name", "cores", "memory_mb", "disk_size_gb",
    "storage_pool", "network_bridge", "start_at_boot", "boot_order", "boot_delay", "features", "snapshots", "volumes", "firewall",
    "network_config", "user_config", "dependencies", "traefik_service", "execution_order", "portainer_role",
];

/** portainer_role (deployed by the original's `sync all`): the server becomes the portainer application. */
const mapPortainerRole = (raw: Obj, notes: Note[]): Obj | undefined => {
    const role = raw.portainer_role;
    if (role === undefined || role === "none") {
        if (role === "none") notes.push(note("dropped", "portainer_role", "none"));
        return undefined;
    }
    if (role === "primary") {
        notes.push(note("changed", "portainer_role",
            "primary -> application portainer: the Portainer server on :9443 with a certificate from the internal CA (the original deployed it in `phoenix sync all`, with a self-signed certificate Traefik could not verify)"));
        notes.push(note("added", "application.secrets",
            "PORTAINER_ADMIN_PASSWORD: the stack secret portainerAdminPassword, Portainer's first admin (pulumi config set --secret portainerAdminPassword <password>)"));
        return { script: "portainer", secrets: { PORTAINER_ADMIN_PASSWORD: "portainerAdminPassword" } };
    }
    notes.push(note("dropped", "portainer_role",
        `${String(role)}: Phoenix does not deploy the Portainer agent (an extension point, like the Docker stacks); the server reaches an agent directly on 9001, not through Traefik`));
    return undefined;
};

/** The NFS volume through which the original staged 103's CA files (root, fingerprint, provisioner password). */
const isCaStaging = (v: Obj): boolean => str(v.mount_point) === "/etc/step-ca/certs" || /\/\.step-ca\/?$/.test(str(v.path) ?? "");

const mapNfs = (raw: Obj, notes: Note[]): Obj[] =>
    listOf(raw, "volumes", notes).flatMap((v: unknown, i: number): Obj[] => {
        const key = `volumes[${i}]`;
        if (!isObj(v)) return [];
        if (v.type !== "nfs") {
            notes.push(note("dropped", key, `type ${String(v.type)}: the original mounted only nfs volumes`));
            return [];
        }
        if (isCaStaging(v)) {
            notes.push(note("dropped", key,
                `${String(v.path)} -> ${String(v.mount_point)}: the CA staging share (root certificate and the provisioner password, mode 644); the root arrives through trusted_ca with caFrom, the password is a stack secret`));
            return [];
        }
        if (!str(v.server) || !str(v.path) || !str(v.mount_point)) {
            notes.push(note("dropped", key, "needs server, path and mount_point"));
            return [];
        }
        if (v.name !== undefined) notes.push(note("dropped", `${key}.name`, "a label only"));
        return [{ server: str(v.server), export: str(v.path), mountPoint: str(v.mount_point) }];
    });

/**
 * user_config -> cloudInit: username is the user; a password becomes cloudInit.passwordSecret, the name of a stack
 * secret (the value is never written); every other key, secret-looking or not, is reported.
 */
const mapUserConfig = (raw: Obj, secrets: SecretScope, notes: Note[]): { user?: string; passwordSecret?: string } => {
    const uc = raw.user_config;
    if (uc === undefined) return {};
    if (!isObj(uc)) {
        notes.push(note("dropped", "user_config", "not an object: nothing imported from it"));
        return {};
    }
    const user = str(uc.username);
    if (uc.username !== undefined && !user) notes.push(note("dropped", "user_config.username", "not a user name"));
    let passwordSecret: string | undefined;
    for (const [k, v] of Object.entries(uc)) {
        if (k === "username") continue;
        if (k === "password" && typeof v === "string" && v !== "") {
            passwordSecret = recordSecret(secrets, "user_config.password", v, "cloudInit.passwordSecret names it: the user's cloud-init password");
        } else if (SECRET_KEY.test(k)) {
            recordSecret(secrets, `user_config.${k}`, v);
        } else {
            notes.push(note("dropped", `user_config.${k}`,
                "not mapped: cloudInit sets only the user and its password (SSH keys come from stack config sshPublicKeys)"));
        }
    }
    return { user, passwordSecret };
};

/** A template's own image, when it is not the defaults' cloud image. */
const imageOf = (raw: Obj, ctx: ImportContext): Obj | undefined => {
    const file = str(raw.template_image);
    if (!file) return undefined;
    const image = cloudImage(file, str(at(ctx.source.hypervisor, "vm_defaults.ubuntu_release")));
    return image.fileName === (ctx.defaults.cloudImage as Obj).fileName ? undefined : image;
};

export const mapVm = (raw: Obj, ctx: ImportContext, byId: ReadonlyMap<number, Obj>): GuestImport => {
    const notes: Note[] = [];
    const id = raw.vmid as number;
    const secrets = secretScope(`vm${id}`, notes, ctx.secretValues);
    const { name, written, cores, memoryMb, diskGb } = fillOriginalDefaults("vm", id, raw, ctx, notes);
    const cloneFrom = num(raw.clone_from_vmid);
    const template = raw.is_template === true || ctx.cloneSources.has(id);
    if (raw.template_snapshot_name !== undefined) {
        notes.push(note("dropped", "template_snapshot_name", `${String(raw.template_snapshot_name)}: vm-manager never used it${template ? " (template: true comes from is_template)" : ""}`));
    }
    if (raw.snapshots !== undefined) notes.push(note("changed", "snapshots", "lifecycleSnapshots: true (pre-configured before the features, final-form after the health check)"));

    const source = cloneFrom !== undefined ? byId.get(cloneFrom) : undefined;
    const storage = str(raw.storage_pool);
    if (storage) notes.push(note("changed", "storage_pool", "now applied; the original used only vm_defaults.storage_pool"));
    const bridge = str(raw.network_bridge);
    if (bridge) notes.push(note("changed", "network_bridge", "now applied; the original used only vm_defaults.network_bridge"));

    const { user, passwordSecret } = mapUserConfig(raw, secrets, notes);
    const templateUser = source ? str(at(source, "user_config.username")) : undefined;
    if (user && cloneFrom !== undefined) {
        notes.push(note("changed", "user_config.username", user === templateUser ? "now applied on the clone (the original inherited the template's, the same user)" : `now applied on the clone; the original inherited the template's (${templateUser ?? "none"})`));
    }

    const features = mapFeatures(raw, ctx, ipOf(raw), notes, secrets);
    const nfsVolumes = mapNfs(raw, notes);
    const network = mapNetwork(raw, ctx, "vm", notes);
    if (bridge && bridge !== (ctx.defaults.network as Obj).bridge) network.bridge = bridge;
    reportUnknownKeys(raw, HANDLED, notes, secrets);

    const guest = compact({
        kind: "vm",
        id,
        name: written,
        template: template || undefined,
        cloneFrom,
        dependsOn: mapDependencies(raw, notes),
        cores,
        memoryMb,
        diskGb,
        storage: storage && storage !== (ctx.defaults.storage as Obj).vm ? storage : undefined,
        network,
        ...mapBoot(raw, "vm", notes),
        image: imageOf(raw, ctx),
        cloudInit: user || passwordSecret ? compact({ user, passwordSecret }) : undefined,
        nfsVolumes: nfsVolumes.length > 0 ? nfsVolumes : undefined,
        features,
        application: mapPortainerRole(raw, notes),
        healthCheck: mapHealthCheck(raw, ctx, "vm", false, features, notes),
        traefikService: mapTraefikService(raw, "vm", true, notes),
        firewall: template && cloneFrom === undefined && raw.firewall === undefined ? undefined : mapFirewall(raw.firewall, "vm", notes),
    });
    if (template && cloneFrom === undefined && raw.firewall === undefined) {
        notes.push(note("added", "firewall", "none: a template never boots; its clones state their own"));
    }
    applyInvalid("vm", raw, guest, notes);
    return { id, name, kind: "vm", file: guestFileName(id, name), guest, notes, missingScripts: missingScripts(ctx, guest) };
};
