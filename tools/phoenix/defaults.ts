// defaults.yaml from the values the original shared between guests: vm_defaults, the hypervisor file's domain, time
// zone and storage IDs, and the root keys of the container file.
import * as path from "path";
import { type Note, type Obj, note } from "./model";
import { type PhoenixSource, at, isObj, str } from "./source";
import { nameserverList } from "./common";

/** The cloud image the original downloaded (cloud-images.ubuntu.com/<release>/current/<image>) for a template VM. */
export const cloudImage = (templateImage: string, release = "noble"): Obj => ({
    url: `https://cloud-images.ubuntu.com/${release}/current/${templateImage}`,
    // Proxmox import storage accepts .qcow2/.raw names; the Ubuntu .img is a qcow2 image.
    fileName: templateImage.replace(/\.img$/, ".qcow2"),
});

const mostCommon = (values: (string | undefined)[]): string | undefined => {
    const counts = new Map<string, number>();
    for (const v of values) if (v) counts.set(v, (counts.get(v) ?? 0) + 1);
    return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
};

export const mapDefaults = (src: PhoenixSource): { defaults: Obj; notes: Note[] } => {
    const notes: Note[] = [];
    const hv = src.hypervisor;
    const vmd = src.vmDefaults;
    const lxcs = src.lxcs.map((l) => l.raw);
    const release = str(at(hv, "vm_defaults.ubuntu_release")) ?? "noble";
    const templateVm = src.vms.find((v) => v.is_template === true && str(v.template_image));
    const baseCt = lxcs.find((l) => l.clone_from_ctid === undefined && str(l.template));
    const nodeIp = str(at(hv, "network.interfaces.address"))?.split("/")[0];

    const storage = {
        lxc: mostCommon(lxcs.map((l) => str(l.storage_pool))) ?? "local-lvm",
        vm: str(vmd.storage_pool) ?? "local-lvm",
        templates: str(at(hv, "proxmox_storage_ids.fastData_shared_iso")) ?? "local",
        images: "local",
        snippets: "local",
    };
    notes.push(note("changed", "proxmox_storage_ids.fastData_shared_iso",
        `storage.templates: ${storage.templates} (the storage ID instead of the path ${baseCt ? str(baseCt.template) : "of the template"}; the original checked another path and re-downloaded the template on every create)`));
    notes.push(note("added", "storage.images", "local: the cloud image is downloaded once to this storage (it needs the import content type); the original downloaded it to a temporary directory on every template create"));
    notes.push(note("added", "storage.snippets", "local: cloud-init vendor data (installs qemu-guest-agent and nfs-common, which the original baked into the image with virt-customize); it needs the snippets content type"));

    const network = {
        bridge: str(vmd.network_bridge) ?? mostCommon(lxcs.map((l) => str(at(l, "network_config.bridge")))) ?? "vmbr0",
        gateway: str(at(hv, "network.interfaces.gateway")) ?? mostCommon(lxcs.map((l) => str(at(l, "network_config.gw")))) ?? "192.168.1.1",
        nameservers: nodeIp ? [nodeIp] : nameserverList(at(lxcs[0] ?? {}, "network_config.nameservers")) ?? ["1.1.1.1"],
        searchDomain: str(hv.domain_name) ?? "internal",
    };
    if (nodeIp) notes.push(note("changed", "network.interfaces.address", `network.nameservers: [${nodeIp}]: the node's DNS server, which the original forced on every VM`));

    const osTemplate = { file: baseCt ? path.posix.basename(str(baseCt.template)!) : "ubuntu-24.04-standard_24.04-2_amd64.tar.zst" };
    const image = cloudImage(str(templateVm?.template_image) ?? "noble-server-cloudimg-amd64.img", release);
    if (templateVm) {
        notes.push(note("changed", "template_image", `cloudImage: ${String(image.url)} saved as ${String(image.fileName)} (Proxmox import storage wants a .qcow2 or .raw name)`));
    }
    const cloudInitUser = str(at(templateVm ?? {}, "user_config.username")) ?? "ubuntu";

    const featureParams: Obj = {};
    if (str(hv.timezone)) featureParams.base_setup = { timezone: str(hv.timezone) };
    const nvidia: Obj = {};
    for (const [key, param] of [["nvidia_driver_version", "driverVersion"], ["nvidia_repo_url", "repoUrl"], ["nvidia_runfile_url", "runfileUrl"]] as const) {
        if (src.lxcRoot[key] === undefined) continue;
        nvidia[param] = String(src.lxcRoot[key]);
        notes.push(note("changed", key, `featureParams.nvidia.${param}: the nvidia feature read it through the root fallback; its script must declare ${param.replace(/([A-Z])/g, "_$1").toUpperCase()}`));
    }
    if (Object.keys(nvidia).length > 0) featureParams.nvidia = nvidia;

    for (const k of Object.keys(vmd)) {
        if (k === "cores" || k === "memory_mb") notes.push(note("changed", `vm_defaults.${k}`, "written into each VM that does not set its own"));
        else if (k === "storage_pool") notes.push(note("changed", "vm_defaults.storage_pool", `storage.vm: ${storage.vm}`));
        else if (k === "network_bridge") notes.push(note("changed", "vm_defaults.network_bridge", `network.bridge: ${network.bridge}`));
        else notes.push(note("dropped", `vm_defaults.${k}`, "never used by the original"));
    }
    const defaults: Obj = { storage, network, osTemplate, cloudImage: image, cloudInitUser };
    if (Object.keys(featureParams).length > 0) defaults.featureParams = featureParams;
    return { defaults, notes };
};

/** Notes for the hypervisor file and the root keys of the guest files: what is host setup, what is secret. */
export const hypervisorNotes = (src: PhoenixSource): { notes: Note[]; secretValues: string[] } => {
    const hv = src.hypervisor;
    const notes: Note[] = [];
    const secretValues: string[] = [];
    const used = new Set(["domain_name", "timezone", "vm_defaults", "step_ca", "proxmox_storage_ids", "network"]);
    const password = str(at(hv, "portainer_api.admin_password"));
    if (password !== undefined) {
        secretValues.push(password);
        notes.push(note("secret", "portainer_api.admin_password",
            "not imported: set it with pulumi config set --secret portainerAdminPassword <password> when a step needs it (the original kept it in plain text and copied it into every guest)"));
    }
    if (isObj(hv.portainer_api)) notes.push(note("dropped", "portainer_api", "Portainer is configured by `phoenix sync all`, not part of this project"));
    const hash = str(at(hv, "users.password_hash"));
    if (hash && hash !== "NOT_SET") secretValues.push(hash);
    if (isObj(hv.users)) {
        notes.push(note("secret", "users", "not imported: the node's admin user is host setup; guest SSH keys come from stack config (pulumi config set --secret --path 'sshPublicKeys[0]' \"$(cat key.pub)\")"));
    }
    const network = isObj(hv.network) ? hv.network : {};
    for (const k of Object.keys(network).filter((k) => k !== "interfaces")) {
        notes.push(note("dropped", `network.${k}`, "host setup or `phoenix sync all`, not guest configuration"));
    }
    const interfaces = isObj(network.interfaces) ? network.interfaces : {};
    for (const k of Object.keys(interfaces).filter((k) => !["address", "gateway"].includes(k))) {
        notes.push(note("dropped", `network.interfaces.${k}`, "the node's own network setup"));
    }
    for (const k of Object.keys(hv)) {
        if (used.has(k) || k === "portainer_api" || k === "users") continue;
        notes.push(note("dropped", k, "host setup (phoenix setup / sync), not guest configuration"));
    }
    for (const k of Object.keys(at(hv, "proxmox_storage_ids") as Obj ?? {}).filter((k) => k !== "fastData_shared_iso")) {
        notes.push(note("dropped", `proxmox_storage_ids.${k}`, "storage IDs come from defaults.yaml storage and each guest's storage"));
    }
    for (const k of Object.keys(src.lxcRoot).filter((k) => k !== "lxc_configs" && !k.startsWith("nvidia_"))) {
        notes.push(note("dropped", `phoenix_lxc_configs.json ${k}`, k === "$schema" ? "the catalog has its own schema (schema.json)" : "not a key the original read"));
    }
    for (const k of Object.keys(src.vmRoot).filter((k) => k !== "vms" && k !== "vm_defaults")) {
        notes.push(note("dropped", `phoenix_vm_configs.json ${k}`, k === "$schema" ? "the catalog has its own schema (schema.json)" : "not a key the original read"));
    }
    return { notes, secretValues };
};
