// A deterministic synthetic catalog for the benchmark: LXC and VM templates, then clones spread evenly over them in
// layers, each clone depending on up to `maxDeps` guests of the previous layer. Every clone runs base_setup plus one
// more feature that exists in features/ (step_cli, docker on VMs, trusted_ca from the catalog's CA) and a health
// check, so dependencies gate real steps. Addresses and MACs are unique and valid. As a cluster (`nodes`), clones are
// spread over the nodes in turn, container templates are kept on every node, VM templates on all but the last (whose
// VMs are cloned across and migrated), and every `haEvery`-th clone is under HA.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { stringify } from "yaml";

export interface SyntheticOptions {
    /** Total guests, templates included. */
    guests: number;
    lxcTemplates?: number;
    vmTemplates?: number;
    /** Layers of clones; a clone in layer k > 1 depends on guests of layer k - 1. */
    layers?: number;
    maxDeps?: number;
    seed?: number;
    /** Proxmox nodes of a cluster (at most 10). Default: one node, the stack's own. */
    nodes?: string[];
    /** With nodes: every n-th clone is under HA (its disks replicated). Default: none. */
    haEvery?: number;
}

export interface SyntheticCatalog {
    dir: string;
    ids: number[];
    /** The stack config it needs over the dev stack's (a cluster's phoenix:nodes), by key. */
    config: Record<string, unknown>;
    /** Removes the directory. */
    remove(): void;
}

/** mulberry32: small, fast, and the same sequence on every machine. */
const prng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const hex = (n: number) => n.toString(16).padStart(2, "0").toUpperCase();

const DEFAULTS = {
    storage: { lxc: "local-zfs", vm: "local-zfs", templates: "local", images: "local", snippets: "local" },
    network: { bridge: "vmbr0", gateway: "10.20.0.1", nameservers: ["10.20.0.1"], searchDomain: "synthetic.lan" },
    osTemplate: { file: "ubuntu-24.04-standard_24.04-2_amd64.tar.zst" },
    cloudImage: { url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img", fileName: "noble-server-cloudimg-amd64.qcow2" },
    cloudInitUser: "phoenix_user",
    featureParams: { base_setup: { timezone: "Etc/UTC" } },
};

/** The guest files, by file name (pure; writeSyntheticCatalog puts them on disk). */
export const syntheticGuests = (opts: SyntheticOptions): Map<string, Record<string, unknown>> => {
    const lxcT = opts.lxcTemplates ?? 2;
    const vmT = opts.vmTemplates ?? 2;
    const layers = opts.layers ?? 4;
    const maxDeps = opts.maxDeps ?? 2;
    const random = prng(opts.seed ?? 42);
    const clones = opts.guests - lxcT - vmT;
    if (clones < 1) throw new Error(`a synthetic catalog needs more than ${lxcT + vmT} guests (its templates)`);

    const files = new Map<string, Record<string, unknown>>();
    const templates: { id: number; kind: "lxc" | "vm" }[] = [];
    let n = 0;
    const network = () => {
        const i = n++;
        return { ip: `10.20.${1 + Math.floor(i / 250)}.${(i % 250) + 2}/16`, mac: `52:54:00:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}` };
    };
    const nodes = opts.nodes ?? [];
    if (nodes.length > 10 || Math.max(lxcT, vmT) > 10) throw new Error("a synthetic cluster has at most 10 nodes and 10 templates of each kind");
    // A template's copy on node j > 0 has the template's ID + 10 j. Copies of a container template are provisioned
    // at once (no fixed address to clash).
    const copies = (id: number, on: string[]) => (on.length > 1 ? { nodes: Object.fromEntries(on.map((node, j) => [node, id + 10 * j])) } : {});
    for (let i = 0; i < lxcT; i++) {
        const id = 900 + i;
        templates.push({ id, kind: "lxc" });
        files.set(`${id}.yaml`, { kind: "lxc", id, name: `lxc-template-${i}`, template: true, ...copies(id, nodes), cores: 2, memoryMb: 1024, diskGb: 8, network: nodes.length > 1 ? { ip: "dhcp" } : network(), features: ["base_setup"] });
    }
    for (let i = 0; i < vmT; i++) {
        const id = 9000 + i;
        templates.push({ id, kind: "vm" });
        files.set(`${id}.yaml`, { kind: "vm", id, name: `vm-template-${i}`, template: true, ...copies(id, nodes.slice(0, -1)), cores: 2, memoryMb: 2048, diskGb: 16, network: { ip: "dhcp" } });
    }

    // The first LXC clone is the catalog's CA, so trusted_ca steps have an input to take.
    const ca = 1000;
    const layerOf: number[][] = Array.from({ length: layers }, () => []);
    for (let k = 0; k < clones; k++) {
        const id = 1000 + k;
        const source = templates[k % templates.length];
        const layer = Math.min(layers - 1, Math.floor((k * layers) / clones));
        const previous = layer > 0 ? layerOf[layer - 1] : [];
        const deps = new Set<number>();
        const want = previous.length === 0 ? 0 : 1 + Math.floor(random() * maxDeps);
        while (deps.size < Math.min(want, previous.length)) deps.add(previous[Math.floor(random() * previous.length)]);
        layerOf[layer].push(id);

        const extra =
            id === ca ? { name: "step_ca", params: { caName: "Synthetic CA", caDnsNames: ["ca.synthetic.lan"], caProvisioner: "admin@synthetic.lan" }, secrets: { CA_PASSWORD: "stepCaPassword", CA_PROVISIONER_PASSWORD: "stepCaProvisionerPassword" } }
            : k % 3 === 1 && source.kind === "lxc" && source.id === 900 ? { name: "trusted_ca", caFrom: ca }
            : source.kind === "vm" && k % 2 === 0 ? "docker"
            : "step_cli";
        files.set(`${id}.yaml`, {
            kind: source.kind,
            id,
            name: `${source.kind}-clone-${id}`,
            ...(nodes.length > 0 ? { node: nodes[k % nodes.length] } : {}),
            ...(nodes.length > 1 && opts.haEvery && k % opts.haEvery === opts.haEvery - 1 ? { ha: { replicated: true } } : {}),
            cloneFrom: source.id,
            ...(deps.size > 0 ? { dependsOn: [...deps].sort((a, b) => a - b) } : {}),
            cores: 1,
            memoryMb: 1024,
            diskGb: source.kind === "lxc" ? 8 : 16,
            network: source.kind === "lxc" ? network() : { ip: network().ip },
            ...(source.kind === "lxc" ? { lifecycleSnapshots: k % 2 === 0 } : {}),
            features: ["base_setup", extra],
            healthCheck: { command: "systemctl is-system-running --wait", retries: 3, interval: 5 },
        });
    }
    return files;
};

export const writeSyntheticCatalog = (opts: SyntheticOptions, parent = os.tmpdir()): SyntheticCatalog => {
    const dir = fs.mkdtempSync(path.join(parent, `phoenix-synthetic-${opts.guests}-`));
    fs.writeFileSync(path.join(dir, "defaults.yaml"), stringify(DEFAULTS));
    const files = syntheticGuests(opts);
    for (const [name, guest] of files) fs.writeFileSync(path.join(dir, name), stringify(guest));
    const nodes = opts.nodes ?? [];
    return {
        dir,
        ids: [...files.values()].map((g) => g.id as number),
        config: nodes.length === 0 ? {} : {
            "phoenix:nodeAddress": null,
            "phoenix:node": nodes[0],
            "phoenix:nodes": Object.fromEntries(nodes.map((node, j) => [node, { address: `10.20.255.${j + 2}` }])),
        },
        remove: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
};
