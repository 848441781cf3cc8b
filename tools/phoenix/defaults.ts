// defaults.yaml from the values the original shared between guests: vm_defaults, the hypervisor file's domain, time
// zone and storage IDs, and the root keys of the container file.
import * as path from "path";
import { type Note, type Obj, compact, note } from "./model";
import { gpuIndexes } from "./lxc";
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

/** The Proxmox node the original ran on, when --node does not name it: the key of defaults.yaml nodes. */
export const DEFAULT_NODE = "phoenix";

/** The GPUs and NVIDIA driver of the node, from the guests' gpu_assignment and the driver the original installed. */
const nodeHardware = (src: PhoenixSource, node: string, notes: Note[]): Obj | undefined => {
    const gpus = [...new Set(src.lxcs.flatMap((l) => gpuIndexes(l.raw.gpu_assignment) ?? []))].sort((a, b) => a - b);
    const hvDriver = str(at(src.hypervisor, "nvidia_driver.version"));
    const rootDriver = str(src.lxcRoot.nvidia_driver_version);
    const driver = hvDriver ?? rootDriver;
    if (gpus.length === 0 && !driver) return undefined;
    if (gpus.length > 0) {
        notes.push(note("added", `nodes.${node}.gpus`,
            `indexes ${gpus.join(", ")}: the GPUs the guests' gpu_assignment names (the original kept no inventory); add each GPU's model, and check the node name (--node, default ${DEFAULT_NODE}): it must be the stack's phoenix:node`));
    }
    if (hvDriver) notes.push(note("changed", "nvidia_driver.version", `nodes.${node}.nvidiaDriver: ${hvDriver}: the driver the node runs; GPU containers install exactly this userspace (the nvidia feature fails when the node's module differs)`));
    if (rootDriver) {
        notes.push(note("changed", "nvidia_driver_version", rootDriver === driver
            ? `nodes.${node}.nvidiaDriver (the same version; the original's nvidia health check compared against it)`
            : `${rootDriver} differs from nvidia_driver.version ${driver}, the node's driver, which nodes.${node}.nvidiaDriver takes: the container's userspace must match the node`));
    }
    return compact({ gpus: gpus.length > 0 ? gpus.map((index) => ({ index })) : undefined, nvidiaDriver: driver });
};

/** featureParams.nvidia: what the original's nvidia feature was told that features/nvidia.sh does not derive itself. */
const nvidiaParams = (src: PhoenixSource, driver: string | undefined, osFile: string, notes: Note[]): Obj => {
    const params: Obj = {};
    const derivedRunfile = driver && `https://us.download.nvidia.com/XFree86/Linux-x86_64/${driver}/NVIDIA-Linux-x86_64-${driver}.run`;
    for (const [key, url] of [["nvidia_runfile_url", str(src.lxcRoot.nvidia_runfile_url)], ["nvidia_driver.runfile_url", str(at(src.hypervisor, "nvidia_driver.runfile_url"))]] as const) {
        if (!url) continue;
        if (url === derivedRunfile) notes.push(note("dropped", key, "the nvidia feature derives this URL from the node's driver version"));
        else {
            params.runfileUrl = url;
            notes.push(note("changed", key, "featureParams.nvidia.runfileUrl"));
        }
    }
    const release = /^ubuntu-(\d+)\.(\d+)-/.exec(osFile);
    const derivedRepo = release && `https://developer.download.nvidia.com/compute/cuda/repos/ubuntu${release[1]}${release[2]}/x86_64/`;
    const repo = str(src.lxcRoot.nvidia_repo_url);
    if (repo && repo.replace(/\/?$/, "/") === derivedRepo) notes.push(note("dropped", "nvidia_repo_url", "the nvidia feature derives NVIDIA's CUDA apt repository from the container's /etc/os-release (the same URL)"));
    else if (repo) {
        params.cudaRepoUrl = repo;
        notes.push(note("changed", "nvidia_repo_url", "featureParams.nvidia.cudaRepoUrl"));
    }
    const cuda = str(at(src.hypervisor, "nvidia_driver.cuda_version"));
    if (cuda) {
        params.cudaVersion = cuda;
        notes.push(note("changed", "nvidia_driver.cuda_version", `featureParams.nvidia.cudaVersion: ${cuda}: the original's nvidia feature installed cuda-toolkit-${cuda.replace(".", "-")} in every GPU container, and llama.cpp is built with it`));
    }
    const nv = at(src.hypervisor, "nvidia_driver");
    if (isObj(nv) && nv.install !== undefined) notes.push(note("dropped", "nvidia_driver.install", "the driver on the node is host setup, a prerequisite of GPU containers (README: GPU containers)"));
    if (isObj(nv) && nv.install_vllm_libs !== undefined) notes.push(note("dropped", "nvidia_driver.install_vllm_libs", "the vllm feature installs what vLLM needs into its own virtual environment"));
    return params;
};

export const mapDefaults = (src: PhoenixSource, node = DEFAULT_NODE): { defaults: Obj; notes: Note[] } => {
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
    const hardware = nodeHardware(src, node, notes);
    const nvidia = nvidiaParams(src, str(hardware?.nvidiaDriver), String(osTemplate.file), notes);
    if (Object.keys(nvidia).length > 0) featureParams.nvidia = nvidia;

    for (const k of Object.keys(vmd)) {
        if (k === "cores" || k === "memory_mb") notes.push(note("changed", `vm_defaults.${k}`, "written into each VM that does not set its own"));
        else if (k === "storage_pool") notes.push(note("changed", "vm_defaults.storage_pool", `storage.vm: ${storage.vm}`));
        else if (k === "network_bridge") notes.push(note("changed", "vm_defaults.network_bridge", `network.bridge: ${network.bridge}`));
        else notes.push(note("dropped", `vm_defaults.${k}`, "never used by the original"));
    }
    const defaults: Obj = { storage, network, osTemplate, cloudImage: image, cloudInitUser };
    if (hardware) defaults.nodes = { [node]: hardware };
    if (Object.keys(featureParams).length > 0) defaults.featureParams = featureParams;
    return { defaults, notes };
};

/** Notes for the hypervisor file and the root keys of the guest files: what is host setup, what is secret. */
export const hypervisorNotes = (src: PhoenixSource): { notes: Note[]; secretValues: string[] } => {
    const hv = src.hypervisor;
    const notes: Note[] = [];
    const secretValues: string[] = [];
    const used = new Set(["domain_name", "timezone", "vm_defaults", "step_ca", "proxmox_storage_ids", "network", "nvidia_driver", "proxmox_defaults"]);
    if (hv.proxmox_defaults !== undefined) {
        notes.push(note("dropped", "proxmox_defaults", "never read by the original; a container that leaves out cores or memory_mb gets proxmox_defaults.lxc's (reported on that guest)"));
    }
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
