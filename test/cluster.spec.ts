// A two-node (and three-node) cluster recorded under the mock engine: every command of a guest runs on its node,
// cross-node clones are refused or planned as Proxmox allows, per-node template copies serve their node's clones, a
// VM's node change is an update with migration, and a container's is refused unless the stack allows its replacement.
import { strict as assert } from "assert";
import * as pulumi from "@pulumi/pulumi";
import { type Recording, recordProgram, unwrapSecrets } from "../plan/engine";
import { readStackConfig } from "../plan/stackFile";
import { type PlanResult, makePlan } from "../plan/plan";
import { planJson, renderText } from "../plan/render";
import { loadLatencyModel } from "../plan/latency";
import { syntheticGuests, writeSyntheticCatalog } from "../plan/synthetic";
import { loadCatalog } from "../catalog/load";
import * as fs from "fs";
import * as path from "path";
import { type StackState, refresh, twinUp } from "../plan/twin";
import { changeAgainst } from "../plan/since";
import { renderChangeText } from "../plan/renderSince";
import { ROOT, catalogCopy, childrenOf, devSpec, find, inputs, names, ops, ownerGuest, urnOf } from "./helpers";
import type { LxcSpec } from "../catalog/model";
import { moveRefusal } from "../components/placement";

const PVE2 = { address: "10.0.0.14", port: 2222, user: "admin", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAswVXqfxOkOM1h9osfsETZbgKXK7xQ5XoOozfIXPGGG" };
const NODES = { phoenix: { address: "10.0.0.13" }, pve2: PVE2 };
const ACCESS: Record<string, { host: string; port: number; user: string; hostKey?: string }> = {
    phoenix: { host: "10.0.0.13", port: 22, user: "root" },
    pve2: { host: PVE2.address, port: PVE2.port, user: PVE2.user, hostKey: PVE2.hostKey },
    pve3: { host: "10.0.0.15", port: 22, user: "root" },
};

/** The dev stack's config turned into a cluster: phoenix:nodes instead of the one-node keys. */
const clusterConfig = (config: Record<string, unknown>): { config: Record<string, unknown>; secretKeys: string[] } => {
    const sc = readStackConfig("dev");
    const base = { ...sc.config };
    delete base["phoenix:nodeAddress"];
    return { config: { ...base, "phoenix:nodes": NODES, ...config }, secretKeys: sc.secretKeys };
};

/** The dev stack turned into a cluster, recorded. */
export const recordCluster = (config: Record<string, unknown>, invokes?: Parameters<typeof recordProgram>[0]["invokes"]): Promise<Recording> =>
    recordProgram({ ...clusterConfig(config), invokes });

/** `pulumi up` of the cluster through the provider twin, then the deploy workflow's refresh. */
const twinDeploy = async (config: ReturnType<typeof clusterConfig>): Promise<StackState> => {
    const up = await twinUp(config);
    assert.equal(up.error, undefined, up.error);
    return refresh(up.state).state;
};

/** Inserts `line` after the guest file's `id:` line. */
const after = (key: string, line: string) => (text: string) => text.replace(new RegExp(`^(${key}: .*)$`, "m"), `$1\n${line}`);
const sharedCtDisks = (text: string) => `${text}datastores:\n  quickOS-lxc-disks: { shared: true }\n`;

/** 101 and 1002 on pve2; 900 only on phoenix (101 clones it across, onto shared storage); 9000 kept on both nodes. */
const twoNodeCatalog = (edits: Parameters<typeof catalogCopy>[0] = {}) =>
    catalogCopy({
        "defaults.yaml": sharedCtDisks,
        "101-nginx-phoenix.yaml": after("id", "node: pve2"),
        "1002-drphoenix.yaml": after("id", "node: pve2"),
        "9000-ubuntu-cloud-template.yaml": after("id", "nodes: { phoenix: 9000, pve2: 9001 }"),
        ...edits,
    });

/** What a resource waits for besides its machine (replaceWith is recorded among the dependencies too). */
const waitsFor = (rec: Recording, name: string): string[] => {
    const r = find(rec, name);
    return names(r.dependencies.filter((u) => !r.replaceWith.includes(u)));
};
const connectionOf = (rec: Recording, name: string) => unwrapSecrets(find(rec, name).inputs.connection);
const nodeOf = (rec: Recording, guest: number): string => (rec.outputs as any).guests[String(guest)].node;

describe("cluster: two nodes", () => {
    let rec: Recording;
    before(async () => {
        rec = await recordCluster({ "phoenix:catalog": twoNodeCatalog() });
        assert.equal(rec.error, undefined, rec.error?.message);
    });

    it("runs every command of a guest on its own node: pct/qm steps on the node, in-guest VM steps through it", () => {
        const commands = rec.registrations.filter((r) => r.type === "command:remote:Command");
        assert.ok(commands.length > 40, `${commands.length} commands`);
        const seen = new Set<string>();
        for (const c of commands) {
            const guest = ownerGuest(rec, c.urn)!;
            const node = nodeOf(rec, guest);
            seen.add(node);
            const conn = connectionOf(rec, c.name);
            const { proxy, ...direct } = conn;
            if (proxy) {
                // A VM's feature, application and health steps: SSH to the VM, its node as jump host.
                assert.equal(direct.host, (rec.outputs as any).guests[String(guest)].ip, c.name);
                const { dialErrorLimit: _d, perDialTimeout: _p, ...jump } = proxy; // the command SDK's defaults
                assert.deepEqual(jump, { ...ACCESS[node], privateKey: "[secret sshPrivateKey]" }, `${c.name} jumps through ${node}`);
            } else {
                assert.deepEqual(direct, { ...ACCESS[node], privateKey: "[secret sshPrivateKey]", dialErrorLimit: 20, perDialTimeout: 15 }, `${c.name} runs on ${node}`);
            }
        }
        assert.deepEqual([...seen].sort(), ["phoenix", "pve2"]);
        // The issue's example: 101's host directories, id-map delegation and pct exec features go to pve2.
        for (const step of ["101-host-dirs", "101-subids", "101-lxc-conf", "101-fw-reset", "101-start", "101-feature-base_setup", "101-app"]) {
            assert.equal(connectionOf(rec, step).host, PVE2.address, step);
        }
        assert.match(inputs(rec, "101-feature-base_setup").create, /^pct exec 101 -- env /);
        assert.equal(connectionOf(rec, "103-start").host, "10.0.0.13");
        assert.deepEqual(connectionOf(rec, "1002-feature-docker").proxy.host, PVE2.address);
        assert.equal(connectionOf(rec, "1002-wait").host, PVE2.address, "qm guest commands run on the VM's node");
    });

    it("lists every node in the provider's SSH block (snippets and id maps go over SSH to the guest's node)", () => {
        const ssh = JSON.parse(unwrapSecrets(find(rec, "proxmoxve", "pulumi:providers:proxmoxve").inputs.ssh));
        assert.deepEqual(ssh.nodes, [{ name: "phoenix", address: "10.0.0.13", port: 22 }, { name: "pve2", address: PVE2.address, port: PVE2.port }]);
        assert.equal(ssh.username, "root", "one user for the provider: phoenix:sshUser");
        assert.deepEqual(rec.warnings.filter((w) => w.startsWith("stack config")), [
            "stack config phoenix:nodes.pve2.user is admin, but the provider logs in to every node as phoenix:sshUser (root) for its snippet uploads and id maps " +
                "(its SSH block has one user for all nodes): pve2 must accept root too, or set phoenix:sshUser to a user every node accepts",
        ], "said for the node whose user differs, only");
    });

    it("names a template copy's download by the template the catalog names (9000), with the copy and its node", () => {
        const unverified = rec.warnings.filter((w) => w.includes("without a checksum")).map((w) => w.split(":")[0]);
        assert.deepEqual(unverified, ["guest 9000", "guest 9000 (its copy 9001 on pve2)"]);
    });

    it("puts each guest's Proxmox resources on its node; the VM firewall lets SSH in from the VM's own node", () => {
        assert.equal(inputs(rec, "101-ct").nodeName, "pve2");
        for (const r of ["101-fw-options", "101-fw-rules", "1002-fw-options", "1002-fw-rules", "1002-vm"]) assert.equal(inputs(rec, r).nodeName, "pve2", r);
        assert.equal(inputs(rec, "1001-vm").nodeName, "phoenix");
        assert.equal(inputs(rec, "1002-fw-rules").rules[0].source, PVE2.address);
        assert.equal(inputs(rec, "1001-fw-rules").rules[0].source, "10.0.0.13");
    });

    it("clones a container to another node onto shared storage (pct clone --target)", () => {
        assert.deepEqual(inputs(rec, "101-ct").clone, { vmId: 900, nodeName: "phoenix", datastoreId: "quickOS-lxc-disks", full: true });
        assert.ok(find(rec, "101-ct").dependencies.includes(urnOf(rec, "900-template")), "clones 900 once it is a template (a dependsOn, not an input)");
    });

    it("keeps the template 9000 on both nodes: 9001 on pve2 is built like it, from its own image and vendor data there", () => {
        const comps = rec.registrations.filter((r) => r.type === "phoenix:index:VmGuest").map((r) => r.name).sort();
        assert.deepEqual(comps, ["1001", "1002", "9000", "9001"]);
        assert.deepEqual(childrenOf(rec, 9001).map((c) => c.name).sort(), ["9001-image", "9001-vendor-data", "9001-vm"]);
        const vm = inputs(rec, "9001-vm");
        assert.deepEqual([vm.vmId, vm.nodeName, vm.template, vm.name], [9001, "pve2", true, "ubuntu-2404-cloud-template"]);
        assert.deepEqual([inputs(rec, "9001-image").nodeName, inputs(rec, "9000-image").nodeName], ["pve2", "phoenix"]);
        // One file name for the whole family: a clone keeps its vendor data wherever it runs or moves.
        const vendor = inputs(rec, "9001-vendor-data");
        assert.deepEqual([vendor.nodeName, vendor.sourceRaw.fileName], ["pve2", "phoenix-9000-vendor-data.yaml"]);
        assert.equal(vendor.sourceRaw.data, inputs(rec, "9000-vendor-data").sourceRaw.data);
        assert.deepEqual((rec.outputs as any).selection.pulledIn, [{ id: 9001, by: 9000, reason: "copy" }]);
    });

    it("provisions copies of a container template with a fixed address one after another; with dhcp, at once", async () => {
        const fixed = await recordCluster({ "phoenix:catalog": twoNodeCatalog({ "900-copy-base.yaml": after("id", "nodes: { phoenix: 900, pve2: 902 }") }) });
        assert.equal(fixed.error, undefined, fixed.error?.message);
        assert.deepEqual(waitsFor(fixed, "902-ct"), ["900-template"], "902 runs with 900's address and MAC: only once 900 is a template");
        assert.deepEqual([inputs(fixed, "902-ct").nodeName, inputs(fixed, "101-ct").clone.vmId, inputs(fixed, "101-ct").clone.nodeName], ["pve2", 902, "pve2"]);
        const dhcp = await recordCluster({
            "phoenix:catalog": twoNodeCatalog({
                "900-copy-base.yaml": (t) => after("id", "nodes: { phoenix: 900, pve2: 902 }")(t).replace(/network:\n(  .*\n)+/, "network:\n  ip: dhcp\n"),
            }),
        });
        assert.equal(dhcp.error, undefined, dhcp.error?.message);
        assert.deepEqual(waitsFor(dhcp, "902-ct"), [], "nothing to clash: built at once");
    });

    it("serves each node's clones from its local copy: 1002 on pve2 clones 9001, 1001 on phoenix clones 9000, in separate lanes", () => {
        assert.deepEqual(inputs(rec, "1002-vm").clone, { vmId: 9001, nodeName: "pve2", datastoreId: "quickOS-vm-disks", full: true, retries: 3 });
        assert.ok(["9001-vm", "9001-vendor-data"].every((n) => find(rec, "1002-vm").dependencies.includes(urnOf(rec, n))), "its copy's VM and vendor data, as dependsOn");
        assert.equal(inputs(rec, "1002-vm").initialization.vendorDataFileId, "local:snippets/phoenix-9000-vendor-data.yaml");
        assert.deepEqual(inputs(rec, "1001-vm").clone.vmId, 9000);
        assert.ok(!find(rec, "1002-vm").dependencies.includes(urnOf(rec, "1001-vm")), "one lane per copy: 1002 does not wait for 1001's clone");
    });
});

describe("cluster: what Proxmox cannot do is a located catalog error, before any resource", () => {
    const refused = async (catalog: string, config: Record<string, unknown> = {}): Promise<string[]> => {
        const rec = await recordCluster({ "phoenix:catalog": catalog, ...config });
        assert.ok(rec.error instanceof pulumi.RunError, String(rec.error));
        assert.equal(rec.registrations.length, 0, "nothing registered");
        // Catalog copies live in temporary directories: show their files as the catalog's own.
        return rec.error.message.split("\n").slice(1).map((l) => l.replace(/\/[^ :]*?\/guests\//g, "guests/"));
    };

    it("refuses a guest on a node the stack does not declare", async () => {
        const lines = await refused(twoNodeCatalog({ "103-step-ca.yaml": after("id", "node: pve3") }));
        assert.deepEqual(lines, [
            "guests/103-step-ca.yaml:6:7 node: node pve3 is not one of the stack's nodes (phoenix, pve2): declare it in stack config phoenix:nodes " +
                "(pulumi config set --path 'phoenix:nodes.pve3.address' <address>) or use one of them",
        ]);
        // A one-node stack (the original keys) declares exactly its node.
        const dev = await recordProgram({ config: { ...readStackConfig("dev").config, "phoenix:catalog": catalogCopy({ "101-nginx-phoenix.yaml": after("id", "node: pve2") }) } });
        assert.match(String(dev.error), /101-nginx-phoenix\.yaml:5:7 node: node pve2 is not one of the stack's nodes \(phoenix\)/);
    });

    it("refuses a container clone to another node when its storage is not shared, saying what to do", async () => {
        const lines = await refused(twoNodeCatalog({ "defaults.yaml": (t) => t }));
        assert.equal(lines.length, 1, lines.join("\n"));
        assert.match(lines[0], /^guests\/101-nginx-phoenix\.yaml:8:12 cloneFrom: guest 900 is on node phoenix and this container is on pve2: /);
        assert.ok(lines[0].endsWith(
            "Proxmox clones a container to another node only onto shared storage (pct clone --target), and quickOS-lxc-disks is not shared. " +
                "Keep a copy of 900 on pve2 (nodes: { phoenix: 900, pve2: <a free ID> } in guests/900-copy-base.yaml), or use a datastore that allows it (defaults.yaml datastores)"),
        lines[0]);
    });

    it("refuses a VM clone from shared storage onto local storage on another node (Proxmox clones it there onto shared storage only)", async () => {
        const catalog = twoNodeCatalog({
            "defaults.yaml": (t) => `${sharedCtDisks(t)}  ceph-vm: { shared: true }\n`,
            "9000-ubuntu-cloud-template.yaml": after("id", "storage: ceph-vm"),
            "1002-drphoenix.yaml": after("id", "node: pve2"),
        });
        const lines = await refused(catalog);
        assert.equal(lines.length, 1, lines.join("\n"));
        assert.match(lines[0], /1002-drphoenix\.yaml:\d+:\d+ cloneFrom: guest 9000 is on node phoenix and this VM is on pve2: Proxmox clones a VM on shared storage straight to another node, and only onto shared storage, and quickOS-vm-disks is not shared\./);
    });

    it("refuses a clone whose datastore is not on a node it needs, and a guest whose datastore is not on its node", async () => {
        const lines = await refused(twoNodeCatalog({
            "defaults.yaml": (t) => `${sharedCtDisks(t)}  quickOS-vm-disks: { nodes: [phoenix] }\n`,
            "9000-ubuntu-cloud-template.yaml": (t) => t,
        }));
        assert.deepEqual(lines, [
            "guests/1002-drphoenix.yaml:5:7 node: datastore quickOS-vm-disks (defaults.yaml storage.vm) is not on node pve2: defaults.yaml datastores.quickOS-vm-disks.nodes lists phoenix",
            "guests/1002-drphoenix.yaml:8:12 cloneFrom: guest 9000 is on node phoenix and this VM is on pve2: the provider clones it on phoenix into quickOS-vm-disks and migrates it to pve2 with its disks, " +
                "and quickOS-vm-disks is not on pve2. Keep a copy of 9000 on pve2 (nodes: { phoenix: 9000, pve2: <a free ID> } in guests/9000-ubuntu-cloud-template.yaml), or use a datastore that allows it (defaults.yaml datastores)",
        ]);
    });

    it("refuses a VM on a node without its snippets datastore (Proxmox reads the vendor data where the VM starts)", async () => {
        const lines = await refused(twoNodeCatalog({ "defaults.yaml": (t) => `${sharedCtDisks(t)}  local: { nodes: [phoenix] }\n` }));
        assert.deepEqual(lines, [
            "guests/1002-drphoenix.yaml:5:7 node: datastore local (defaults.yaml storage.snippets) is not on node pve2: defaults.yaml datastores.local.nodes lists phoenix",
            "guests/9000-ubuntu-cloud-template.yaml:6:25 nodes.pve2: datastore local (defaults.yaml storage.snippets) is not on its copy 9001 on pve2: defaults.yaml datastores.local.nodes lists phoenix",
            "guests/9000-ubuntu-cloud-template.yaml:6:25 nodes.pve2: datastore local (defaults.yaml storage.images) is not on its copy 9001 on pve2: defaults.yaml datastores.local.nodes lists phoenix",
        ]);
    });

    it("checks a template's copies: its own node and ID, free IDs, declared nodes, never a copy named where the template is meant", async () => {
        const lines = await refused(twoNodeCatalog({
            "9000-ubuntu-cloud-template.yaml": after("id", "nodes: { phoenix: 9000, pve2: 101, pve3: 9002 }"),
            "1001-portainer.yaml": (t) => t.replace("cloneFrom: 9000", "cloneFrom: 9002"),
            "103-step-ca.yaml": after("id", "nodes: { phoenix: 103 }"),
        }));
        assert.deepEqual(lines, [
            "guests/1001-portainer.yaml:7:12 cloneFrom: 9002 is a copy of template 9000 (its nodes); name 9000: each node's clones use that node's copy",
            "guests/103-step-ca.yaml:6:1 nodes: only a template (template: true) is kept on several nodes; any other guest exists once, on its node",
            "guests/9000-ubuntu-cloud-template.yaml:6:31 nodes.pve2: 101 is already used by guests/101-nginx-phoenix.yaml; every copy needs an ID of its own",
            "guests/9000-ubuntu-cloud-template.yaml:6:36 nodes.pve3: node pve3 is not one of the stack's nodes (phoenix, pve2): declare it in stack config phoenix:nodes " +
                "(pulumi config set --path 'phoenix:nodes.pve3.address' <address>) or use one of them",
        ]);
    });
});

describe("cluster: a VM clone to a node without a copy of its template", () => {
    let rec: Recording;
    before(async () => {
        const catalog = twoNodeCatalog({ "1002-drphoenix.yaml": after("id", "node: pve3") });
        rec = await recordCluster({ "phoenix:catalog": catalog, "phoenix:nodes": { ...NODES, pve3: { address: "10.0.0.15" } } });
        assert.equal(rec.error, undefined, rec.error?.message);
    });

    it("is cloned from the template's node and migrated by the provider (local disks on both nodes)", () => {
        const vm = inputs(rec, "1002-vm");
        assert.deepEqual([vm.nodeName, vm.clone.vmId, vm.clone.nodeName, vm.clone.datastoreId], ["pve3", 9000, "phoenix", "quickOS-vm-disks"]);
    });

    it("gets the family's vendor data on its node (Proxmox reads it where the VM starts), kept when the VM goes", () => {
        const vendor = find(rec, "1002-vendor-data");
        assert.deepEqual([inputs(rec, "1002-vendor-data").nodeName, inputs(rec, "1002-vendor-data").sourceRaw.fileName], ["pve3", "phoenix-9000-vendor-data.yaml"]);
        assert.equal(vendor.retainOnDelete, true, "other VMs of the family on pve3 read the same file");
        assert.ok(find(rec, "1002-vm").dependencies.includes(urnOf(rec, "1002-vendor-data")), "waits for it (a dependsOn: the id is a value)");
        assert.equal(inputs(rec, "1002-vm").initialization.vendorDataFileId, "local:snippets/phoenix-9000-vendor-data.yaml");
        assert.equal(find(rec, "9000-vendor-data").retainOnDelete, false, "the template's own file goes with it");
    });
});

describe("cluster: moving guests between nodes", () => {
    it("moves a VM by migration: 1001 from phoenix to pve2 is an update of its VM (even with a new clone source there)", async () => {
        const before = await recordCluster({ "phoenix:catalog": twoNodeCatalog() });
        const moved = await recordCluster({ "phoenix:catalog": twoNodeCatalog({ "1001-portainer.yaml": after("id", "node: pve2") }) });
        assert.equal(moved.error, undefined, moved.error?.message);
        const [old, now] = [inputs(before, "1001-vm"), inputs(moved, "1001-vm")];
        assert.deepEqual([old.nodeName, now.nodeName, now.migrate], ["phoenix", "pve2", true]);
        assert.deepEqual([old.clone.vmId, now.clone.vmId], [9000, 9001], "on pve2 the local copy would be its source...");
        assert.deepEqual(find(moved, "1001-vm").ignoreChanges, ["clone"], "...which changes nothing for the existing VM");
        assert.equal(now.initialization.vendorDataFileId, old.initialization.vendorDataFileId, "the family's vendor data has one name on every node");
        const changed = Object.keys(now).filter((k) => JSON.stringify(old[k]) !== JSON.stringify(now[k])).sort();
        assert.deepEqual(changed, ["clone", "nodeName"]);
        // Its steps follow it: the node commands and the jump host change (an update of each command, never a replacement)...
        for (const step of ["1001-wait", "1001-fw-reset", "1001-feature-docker"]) {
            assert.deepEqual(find(moved, step).inputs.triggers, find(before, step).inputs.triggers, `${step}: same triggers, so no replacement`);
        }
        assert.equal(connectionOf(moved, "1001-wait").host, PVE2.address);
        assert.equal(connectionOf(moved, "1001-feature-docker").proxy.host, PVE2.address);
        // ...but the firewall reset, run once after the clone, never again: the file holds the catalog's rules by now.
        assert.deepEqual(find(moved, "1001-fw-reset").ignoreChanges, ["connection", "create", "triggers"]);
        assert.equal(inputs(moved, "1001-fw-rules").nodeName, "pve2", "the firewall resources follow in place (no ForceNew on nodeName)");
    });

    it("through the provider twin: the deployed 1001 is migrated to pve2 (an update of its VM), its steps only take the new connection, and the next up changes nothing", async () => {
        const deployed = await twinDeploy(clusterConfig({ "phoenix:catalog": twoNodeCatalog() }));
        const config = clusterConfig({ "phoenix:catalog": twoNodeCatalog({ "1001-portainer.yaml": after("id", "node: pve2") }) });
        const moved = await twinUp({ ...config, prior: deployed });
        assert.equal(moved.error, undefined, moved.error);
        const steps = ["wait", "feature-nfs_volumes", "feature-base_setup", "feature-trusted_ca", "feature-step_cli", "feature-docker", "app", "health"];
        assert.deepEqual(ops(moved).sort(), [
            "update 1001-vm [nodeName]",
            "update 1001-fw-rules [nodeName, rules[0].source]",
            "update 1001-fw-options [nodeName]",
            ...steps.map((s) => `update 1001-${s} [connection]`),
        ].sort());
        const vm = moved.changes.find((c) => c.name === "1001-vm")!;
        assert.deepEqual([vm.ignored, vm.rules[0].change], [["clone"], "migrate-update/else-replace"], "the new clone source (9001) is ignored; migrate: true makes the node an update");
        assert.ok(moved.changes.filter((c) => c.type === "command:remote:Command").every((c) => c.runs.every((r) => r.ran === "update")), "no step runs its script again");
        const g = moved.state.node.guests.get(1001)!;
        assert.deepEqual([g.node, g.running, g.disks.map((d) => d.storage)], ["pve2", true, ["quickOS-vm-disks"]], "the VM itself, migrated online with its disk");
        assert.deepEqual(ops(await twinUp({ ...config, prior: refresh(moved.state).state })), []);
        // The change preview says it migrates, and costs the disk copy (the model's clone figure: it has no migration's).
        const preview = await changeAgainst(deployed, { ref: "test", commit: "0000000", refProgram: "working tree code" }, { config: { ...config.config, "phoenix:nodeAddress": null } });
        const text = renderChangeText(preview);
        assert.match(text, /^ {4}~ {2}1001-vm +update +nodeName; migrates the VM to its new node \(qm migrate, online with its local disks: VM:7819-7836\)$/m);
        const model = loadLatencyModel();
        assert.equal(preview.makespan.unlimited, model.vm.clone + model.vm.configure + model.vm.configure, "the migration, then its firewall updated in place");
    });

    it("through the provider twin: a VM HA moved is found on its real node by the refresh (bpg vm.go:4306-4322), and the next up migrates it back", async () => {
        const config = clusterConfig({ "phoenix:catalog": twoNodeCatalog() });
        const deployed = await twinDeploy(config);
        deployed.node.guests.get(1001)!.node = "pve2"; // ha-manager relocated it
        const read = refresh(deployed);
        assert.deepEqual(ops(read), ["update 1001-vm [nodeName]"]);
        const back = await twinUp({ ...config, prior: read.state });
        assert.deepEqual(ops(back), ["update 1001-vm [nodeName]"]);
        assert.equal(back.state.node.guests.get(1001)!.node, "phoenix");
    });

    const onPhoenix = { "proxmoxve:index/getContainersLegacy:getContainersLegacy": () => ({ id: "containers", containers: [{ vmId: 101, nodeName: "phoenix", name: "Nginx-Phoenix", tags: ["phoenix"] }] }) };

    it("refuses to move a container (the provider would re-create it), with the command to migrate it by hand", async () => {
        const rec = await recordCluster({ "phoenix:catalog": twoNodeCatalog() }, onPhoenix);
        assert.ok(rec.error instanceof pulumi.RunError, String(rec.error));
        // The SDK names the input that failed: error serializing property "nodeName": <the refusal>.
        assert.equal(rec.error.message.replace(/\/[^ ]*?\/guests\//, "guests/"), [
            'error serializing property "nodeName": guest 101: the container is on node phoenix, and guests/101-nginx-phoenix.yaml puts it on pve2. The provider cannot migrate a container: it would destroy it and create it anew on pve2, losing its data. To move it:',
            // pct migrate refuses a local bind mount (pve-container src/PVE/LXC/Migrate.pm:66-73): 101 has two.
            "  1. on phoenix: pct shutdown 101, then copy its host directories to the same paths on pve2:",
            "       rsync -aHAX --numeric-ids '/mnt/pve/quickOS/lxc-persistent-data/101/logs/' root@pve2:'/mnt/pve/quickOS/lxc-persistent-data/101/logs/'",
            "       rsync -aHAX --numeric-ids '/mnt/pve/quickOS/lxc-persistent-data/101/ssl/' root@pve2:'/mnt/pve/quickOS/lxc-persistent-data/101/ssl/'",
            "  2. on phoenix: mark its bind mounts shared for the move (Proxmox refuses to migrate a local bind mount), then migrate it:",
            "       sed -i -E '/^(mp0|mp1): /s/$/,shared=1/' /etc/pve/lxc/101.conf",
            "       pct migrate 101 pve2",
            "  3. on pve2: unmark them (the catalog's are not shared), then start it:",
            "       sed -i -E '/^(mp0|mp1): /s/,shared=1$//' /etc/pve/lxc/101.conf",
            "       pct start 101",
            "  4. point the stack's state at pve2 (README: \"Moving a container\"), then run pulumi up again.",
            "Or leave it on phoenix (node: phoenix), or list 101 in stack config phoenix:allowReplace to destroy it and re-create it on pve2.",
        ].join("\n"));
        assert.deepEqual(rec.registrations.filter((r) => r.name === "101-ct"), [], "the container is never registered, so never replaced");
    });

    it("a container whose bind mounts are all shared (or that has none) moves with pct migrate alone; only the unshared ones are copied and marked", () => {
        const spec = devSpec<LxcSpec>(101);
        assert.ok(fs.readFileSync(path.join(ROOT, "README.md"), "utf8").includes(`\`\`\`\n${moveRefusal({ ...spec, node: "pve2" }, "pve1")}\n\`\`\``), "README shows 101's refusal as it prints");
        const moved = { ...spec, node: "pve2" };
        const simple = moveRefusal({ ...moved, bindMounts: moved.bindMounts.map((b) => ({ ...b, shared: true })) }, "phoenix").split("\n").slice(1, 3);
        assert.deepEqual(simple, [
            "  1. on phoenix: pct migrate 101 pve2 --restart   (under HA: ha-manager migrate ct:101 pve2)",
            "  2. point the stack's state at pve2 (README: \"Moving a container\"), then run pulumi up again.",
        ]);
        const mixed = moveRefusal({ ...moved, bindMounts: [{ ...moved.bindMounts[0], shared: true }, moved.bindMounts[1]], ha: { state: "started", maxRestart: 1, maxRelocate: 1, strict: true, replicated: false, nodes: { phoenix: 1 } } }, "phoenix");
        assert.match(mixed, /ha-manager set ct:101 --state ignored first, and --state started after step 3\):\n {7}rsync [^\n]*101\/ssl\/'\n {2}2\./);
        assert.match(mixed, /sed -i -E '\/\^\(mp1\): \/s\/\$\/,shared=1\/' \/etc\/pve\/lxc\/101\.conf/);
        assert.doesNotMatch(mixed, /101\/logs/);
    });

    it("moves a container by re-creating it when the stack lists it in phoenix:allowReplace", async () => {
        const rec = await recordCluster({ "phoenix:catalog": twoNodeCatalog(), "phoenix:allowReplace": [101] }, onPhoenix);
        assert.equal(rec.error, undefined, rec.error?.message);
        assert.equal(inputs(rec, "101-ct").nodeName, "pve2");
        const stays = await recordCluster({ "phoenix:catalog": twoNodeCatalog({ "101-nginx-phoenix.yaml": (t) => t }) }, onPhoenix);
        assert.equal(stays.error, undefined, "a container where the catalog puts it is no move");
    });
});

describe("cluster: stack config", () => {
    it("rejects malformed phoenix:nodes, and the one-node keys next to it, naming the key", async () => {
        const cases: [Record<string, unknown>, string][] = [
            [{ "phoenix:nodes": { pve2: { addr: "x" } } }, 'stack config phoenix:nodes.pve2.addr: expected one of address, port, user, hostKey, received "addr"'],
            [{ "phoenix:nodes": { pve2: { address: "10.0.0.14", port: 70000 } } }, "stack config phoenix:nodes.pve2.port: expected a port 1..65535, received 70000"],
            [{ "phoenix:nodes": { "pve 2": { address: "x" } } }, 'stack config phoenix:nodes.pve 2: expected a Proxmox node name (letters, digits and inner hyphens, at most 63 characters), received "pve 2"'],
            [{ "phoenix:nodes": [] }, "stack config phoenix:nodes: expected a map of node name to SSH access"],
            [{ "phoenix:nodes": { pve2: { address: "10.0.0.14" } } }, 'stack config phoenix:node: expected one of the nodes in phoenix:nodes (pve2), received "phoenix"'],
            [{ "phoenix:nodeAddress": "10.0.0.13" }, 'stack config phoenix:nodeAddress: expected no value when phoenix:nodes is set'],
            [{ "phoenix:allowReplace": "101" }, "stack config phoenix:allowReplace: expected a list of guest IDs, e.g. [101], received 101"],
            [{ "phoenix:haAffinity": "both" }, 'stack config phoenix:haAffinity: expected "rules" (Proxmox VE 9) or "groups" (Proxmox VE 8), received "both"'],
        ];
        for (const [config, message] of cases) {
            const rec = await recordCluster(config);
            assert.ok(rec.error instanceof pulumi.RunError, `${JSON.stringify(config)}: ${rec.error}`);
            assert.ok(rec.error.message.startsWith(message), `${rec.error.message}\n  expected to start with\n${message}`);
            assert.equal(rec.registrations.length, 0);
        }
    });

    it("takes the node's port and user from phoenix:sshPort and phoenix:sshUser unless the node gives its own", async () => {
        const rec = await recordCluster({ "phoenix:sshUser": "ops", "phoenix:sshPort": 2200, "phoenix:guests": [101], "phoenix:catalog": twoNodeCatalog() });
        assert.equal(rec.error, undefined, rec.error?.message);
        const [phoenix, pve2] = [connectionOf(rec, "900-start"), connectionOf(rec, "101-start")];
        assert.deepEqual([phoenix.host, phoenix.port, phoenix.user], ["10.0.0.13", 2200, "ops"]);
        assert.deepEqual([pve2.host, pve2.port, pve2.user], [PVE2.address, PVE2.port, PVE2.user]);
    });
});

describe("cluster: HA for what matters", () => {
    const withHa = (edits: Parameters<typeof catalogCopy>[0] = {}) =>
        twoNodeCatalog({
            // The CA's state directory on a filesystem both nodes mount (HA may recover 103 on pve2).
            "103-step-ca.yaml": (t) => `${t.replace("containerPath: /etc/step-ca,", "containerPath: /etc/step-ca, shared: true,")}ha: { nodes: { phoenix: 2, pve2: 1 } }\n`,
            "1001-portainer.yaml": (t) => `${t}ha: { maxRestart: 2, replicated: true }\n`,
            ...edits,
        });

    it("puts a guest under Proxmox HA once its health check has passed, with a node-affinity rule for its preferred nodes", async () => {
        const rec = await recordCluster({ "phoenix:catalog": withHa() });
        assert.equal(rec.error, undefined, rec.error?.message);
        const ha = find(rec, "103-ha", "proxmoxve:index/haresource:Haresource");
        assert.deepEqual(inputs(rec, "103-ha"), { resourceId: "ct:103", state: "started", maxRestart: 1, maxRelocate: 1, comment: "Phoenix: Step-CA" });
        assert.deepEqual(waitsFor(rec, "103-ha"), ["103-health"], "after the health check (103's last step)");
        assert.deepEqual(inputs(rec, "103-ct").mountPoints[0], { volume: "/mnt/pve/quickOS/lxc-persistent-data/103/ssl", path: "/etc/step-ca", readOnly: false, shared: true }, "its bind mount marked shared");
        assert.deepEqual([ha.replaceWith, ha.deletedWith], [[urnOf(rec, "103-ct")], ""], "replaced with the container, deleted before it (Proxmox refuses to delete an HA-managed container without purge)");
        find(rec, "103-ha-rule", "proxmoxve:index/harule:Harule");
        assert.deepEqual(inputs(rec, "103-ha-rule"), { rule: "phoenix-103", type: "node-affinity", comment: "Phoenix: Step-CA", resources: ["ct:103"], nodes: { phoenix: 2, pve2: 1 }, strict: false });
        assert.deepEqual(waitsFor(rec, "103-ha-rule"), ["103-ha"], "the rule names an HA-managed resource");
        assert.ok(!(rec.outputs as any).guests["101"].ready || !find(rec, "101-app").dependencies.includes(ha.urn), "dependents wait for readiness, not for HA");
    });

    it("uploads a VM's vendor data to every node HA may start it on, before putting it under HA", async () => {
        const rec = await recordCluster({ "phoenix:catalog": withHa() });
        assert.equal(rec.error, undefined, rec.error?.message);
        assert.deepEqual(inputs(rec, "1001-ha"), { resourceId: "vm:1001", state: "started", maxRestart: 2, maxRelocate: 1, comment: "Phoenix: Portainer" });
        // pve2 has the family's file already (9001's copy of the template put it there): the same resource.
        assert.deepEqual(waitsFor(rec, "1001-ha"), ["1001-health", "9001-vendor-data"]);
        const three = await recordCluster({ "phoenix:catalog": withHa(), "phoenix:nodes": { ...NODES, pve3: { address: "10.0.0.15" } } });
        assert.equal(three.error, undefined, three.error?.message);
        assert.deepEqual(waitsFor(three, "1001-ha"), ["1001-health", "1001-vendor-data-pve3", "9001-vendor-data"]);
        assert.deepEqual([inputs(three, "1001-vendor-data-pve3").nodeName, find(three, "1001-vendor-data-pve3").retainOnDelete], ["pve3", true]);
    });

    it("uses an HA group instead of a rule on Proxmox VE 8 (phoenix:haAffinity groups)", async () => {
        const rec = await recordCluster({ "phoenix:catalog": withHa(), "phoenix:haAffinity": "groups" });
        assert.equal(rec.error, undefined, rec.error?.message);
        assert.deepEqual(inputs(rec, "103-ha-group"), { group: "phoenix-103", comment: "Phoenix: Step-CA", nodes: { phoenix: 2, pve2: 1 }, restricted: false, noFailback: false });
        assert.equal(inputs(rec, "103-ha").group, "phoenix-103");
        assert.deepEqual(names(find(rec, "103-ha").propertyDependencies.group), ["103-ha-group"]);
        assert.equal(rec.registrations.filter((r) => r.type === "proxmoxve:index/harule:Harule").length, 0);
    });

    it("refuses HA that could take a container away from its bind mounts' directories, even with replicated disks; accepts it kept on the node", async () => {
        const at103 = (ha: string) => withHa({ "103-step-ca.yaml": (t) => `${t}ha: ${ha}\n` });
        const replicated = await recordCluster({ "phoenix:catalog": at103("{ replicated: true }") });
        assert.match(String(replicated.error?.message), /103-step-ca\.yaml:50:1 ha: HA may move or recover this container on pve2, but its bind mount \/mnt\/pve\/quickOS\/lxc-persistent-data\/103\/ssl is a directory on phoenix only/);
        assert.equal(replicated.registrations.length, 0);
        const kept = await recordCluster({ "phoenix:catalog": at103("{ nodes: { phoenix: 1 }, strict: true }") });
        assert.equal(kept.error, undefined, kept.error?.message);
        assert.equal(inputs(kept, "103-ct").mountPoints[0].shared, undefined, "not marked shared: the catalog does not say so");
    });

    it("refuses HA that cannot work: on a template, preferring another node, recovering from local disks", async () => {
        const rec = await recordCluster({
            "phoenix:catalog": withHa({
                "defaults.yaml": (t) => t,
                "101-nginx-phoenix.yaml": (t) => t,
                "103-step-ca.yaml": (t) => `${t}ha: { nodes: { phoenix: 1, pve2: 2 } }\n`,
                "900-copy-base.yaml": (t) => `${t}ha: {}\n`,
                "102-traefik-internal.yaml": (t) => `${t}ha: { strict: true }\n`,
            }),
        });
        assert.ok(rec.error instanceof pulumi.RunError, String(rec.error));
        const lines = rec.error.message.split("\n").slice(1).map((l) => l.replace(/\/[^ :]*?\/guests\//g, "guests/"));
        const localDisks = "HA may recover this guest on pve2, but its disks are on quickOS-lxc-disks, which is not shared: use shared storage (defaults.yaml datastores), " +
            "limit HA to this node (ha: { nodes: { phoenix: 1 }, strict: true }), or set ha.replicated: true if Proxmox storage replication keeps copies on those nodes";
        const localDirs = (dir: string) =>
            `HA may move or recover this container on pve2, but its bind mount /mnt/pve/quickOS/lxc-persistent-data/${dir} is a directory on phoenix only: ` +
            "Proxmox refuses to migrate a local bind mount, and a recovery there would start it without that data (storage replication does not copy it). " +
            "Set shared: true on a bind mount whose directory every node mounts at the same path (a cluster filesystem), or limit HA to this node (ha: { nodes: { phoenix: 1 }, strict: true })";
        assert.deepEqual(lines, [
            `guests/102-traefik-internal.yaml:44:1 ha: ${localDisks}`,
            `guests/102-traefik-internal.yaml:44:1 ha: ${localDirs("102/certs")}`,
            "guests/102-traefik-internal.yaml:44:7 ha.strict: needs ha.nodes: the nodes the guest may run on",
            `guests/103-step-ca.yaml:50:1 ha: ${localDisks}`,
            `guests/103-step-ca.yaml:50:1 ha: ${localDirs("103/ssl")}`,
            "guests/103-step-ca.yaml:50:14 ha.nodes: must give the guest's own node phoenix the highest priority (2): HA would move it away at once, and the next up would move it back",
            "guests/900-copy-base.yaml:27:1 ha: a template never runs, so HA has nothing to keep running; put ha on the guests that clone it",
        ]);
        assert.equal(rec.registrations.length, 0);
    });
});

describe("cluster: the plan per node (the example stack, Pulumi.cluster.yaml)", () => {
    let plan: PlanResult;
    before(async () => {
        plan = await makePlan({ stack: "cluster" });
    });

    it("groups the guests by node, and keeps one clone lane per copy of a template", () => {
        assert.deepEqual(plan.recorded.nodes, [
            { node: "pve1", guests: [900, 9000, 103, 1001] },
            { node: "pve2", guests: [901, 9001, 110, 1002] },
            { node: "pve3", guests: [902, 111, 1003] },
        ]);
        assert.deepEqual(plan.recorded.lanes, [
            { source: 900, clones: [103] }, { source: 901, clones: [110] }, { source: 902, clones: [111] },
            { source: 9000, clones: [1001, 1003] }, { source: 9001, clones: [1002] },
        ]);
        const text = renderText(plan);
        assert.match(text, /^Phoenix plan: stack cluster, catalog examples\/cluster \(11 guests on 3 nodes, \d+ resources\)$/m);
        assert.match(text, /^Nodes \(guests per node; each runs at most 4 heavy steps at once: clones and creates, downloads, features\)\n {2}pve1 4 guests {3}900, 9000, 103, 1001\n/m);
        assert.match(text, /^ on pve3\n {2}902 base \(lxc\)\n/m);
        const json = planJson(plan) as any;
        assert.deepEqual(json.guests.find((g: any) => g.id === 1003).node, "pve3");
        assert.deepEqual(Object.keys(json.simulation.hosts), ["pve1", "pve2", "pve3"]);
    });

    it("limits heavy steps per node: at one at a time, each node's steps queue, and the makespan says so", async () => {
        const model = loadLatencyModel();
        const one = await makePlan({ stack: "cluster", model: { ...model, limits: { ...model.limits, concurrent_heavy_steps_per_node: 1 } } });
        const s = one.schedule;
        assert.equal(s.hostLimit, 1);
        assert.ok(s.hostWait > 0 && s.makespan > plan.schedule.makespan, `${s.makespan} s with waits of ${s.hostWait} s against ${plan.schedule.makespan} s`);
        // Never two heavy steps at once on one node.
        const heavy = one.recorded.resources.filter((r) => r.heavy && r.seconds > 0);
        for (const a of heavy) {
            for (const b of heavy) {
                if (a === b || a.host !== b.host) continue;
                const overlap = Math.min(s.end.get(a.name)!, s.end.get(b.name)!) - Math.max(s.start.get(a.name)!, s.start.get(b.name)!);
                assert.ok(overlap <= 0, `${a.name} and ${b.name} overlap on ${a.host}`);
            }
        }
        // Each node has its own queue: pve1 and pve2 download the cloud image first (registered first), pve3, with no
        // VM template, creates its copy of 900 at once.
        assert.deepEqual(["9000-image", "9001-image", "900-ct", "901-ct", "902-ct"].map((n) => s.start.get(n)), [0, 0, 120, 120, 0]);
        assert.match(renderText(one), /^ {2}node waits +\d+ s {2}\(heavy steps ready while their node ran 1 already/m);
    });
});

describe("cluster: synthetic clusters for the benchmark", () => {
    it("spread clones over the nodes, keep templates on the nodes (VM templates on all but the last), and load as a cluster", () => {
        const nodes = ["pve1", "pve2", "pve3"];
        const files = [...syntheticGuests({ guests: 300, nodes, haEvery: 10 }).values()] as any[];
        assert.deepEqual(files, [...syntheticGuests({ guests: 300, nodes, haEvery: 10 }).values()], "deterministic");
        const templates = files.filter((g) => g.template);
        assert.deepEqual(templates.map((g) => [g.id, g.nodes]), [
            [900, { pve1: 900, pve2: 910, pve3: 920 }], [901, { pve1: 901, pve2: 911, pve3: 921 }],
            [9000, { pve1: 9000, pve2: 9010 }], [9001, { pve1: 9001, pve2: 9011 }],
        ]);
        const clones = files.filter((g) => !g.template);
        assert.deepEqual(nodes.map((n) => clones.filter((g) => g.node === n).length), [99, 99, 98], "in turn");
        assert.equal(clones.filter((g) => g.ha).length, 29);
        const written = writeSyntheticCatalog({ guests: 300, nodes, haEvery: 10 });
        try {
            assert.deepEqual(written.config["phoenix:nodes"], { pve1: { address: "10.20.255.2" }, pve2: { address: "10.20.255.3" }, pve3: { address: "10.20.255.4" } });
            const catalog = loadCatalog({ dir: written.dir, node: "pve1", nodes });
            assert.equal(catalog.guests.size, 300 + 6, "with the copies");
            const vmOnPve3 = [...catalog.guests.values()].filter((g) => g.kind === "vm" && g.node === "pve3" && !g.template);
            assert.ok(vmOnPve3.length > 0 && vmOnPve3.every((g) => g.cloneSource === g.cloneFrom), "VMs on pve3 are cloned from pve1's template and migrated");
            const ctOnPve2 = [...catalog.guests.values()].filter((g) => g.kind === "lxc" && g.node === "pve2" && !g.template);
            assert.ok(ctOnPve2.every((g) => g.cloneSource === g.cloneFrom! + 10), "containers on pve2 clone its copies");
        } finally {
            written.remove();
        }
    });
});
