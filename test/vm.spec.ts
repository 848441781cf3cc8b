import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type Recording, MOCK_CA_FINGERPRINT, MOCK_CA_PEM, isSecretValue, recordProgram, unwrapSecrets } from "../plan/engine";
import { readStackConfig } from "../plan/stackFile";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import type { VmSpec } from "../catalog/model";
import { guestRunScript, sshFromNodeRule, vmArgs, waitScript } from "../components/vm";
import { ROOT, assertChildren, catalogCopy, childrenOf, devSpec, find, inputs, names, plainStrings, recordDev, urnOf } from "./helpers";

const VM = "proxmoxve:index/vmLegacy:VmLegacy";
const IMAGE = "proxmoxve:download/file:File";
const SNIPPET = "proxmoxve:index/fileLegacy:FileLegacy";
const CMD = "command:remote:Command";
const FWO = "proxmoxve:firewall/optionsLegacy:OptionsLegacy";
const FWR = "proxmoxve:firewall/rulesLegacy:RulesLegacy";
const VENDOR_DATA_ID = "local:snippets/phoenix-9000-vendor-data.yaml";

// Every child of the three VMs with its type and exactly the resources it waits for. Removing an edge from
// components/vm.ts (or adding one) changes one of these lines.
const expectedChildren: Record<number, Record<string, [string, string[]]>> = {
    9000: {
        "9000-image": [IMAGE, []],
        "9000-vendor-data": [SNIPPET, []],
        "9000-vm": [VM, ["9000-image", "9000-vendor-data"]],
    },
    1001: {
        // 9000-vm: the clone source (its last step); 9000-vendor-data: the family's vendor data on its node, restated.
        "1001-vm": [VM, ["9000-vendor-data", "9000-vm"]],
        "1001-fw-reset": [CMD, ["1001-vm"]],
        "1001-fw-options": [FWO, ["1001-vm", "1001-fw-reset"]],
        "1001-fw-rules": [FWR, ["1001-vm", "1001-fw-reset"]],
        "1001-wait": [CMD, ["1001-vm"]],
        "1001-feature-nfs_volumes": [CMD, ["1001-fw-options", "1001-fw-rules", "1001-wait"]],
        "1001-feature-base_setup": [CMD, ["1001-feature-nfs_volumes"]],
        "1001-feature-trusted_ca": [CMD, ["1001-feature-base_setup", "103-feature-step_ca"]],
        "1001-feature-step_cli": [CMD, ["1001-feature-trusted_ca"]],
        "1001-feature-docker": [CMD, ["1001-feature-step_cli"]],
        // dependsOn: [102] gates the application (Portainer): 102's readiness, which includes 103's (102 depends on 103).
        "1001-app": [CMD, ["1001-feature-docker", "102-health"]],
        "1001-health": [CMD, ["1001-app"]],
    },
    1002: {
        // 1001-vm: the clone lane (one clone of 9000 at a time).
        "1002-vm": [VM, ["1001-vm", "9000-vendor-data", "9000-vm"]],
        "1002-fw-reset": [CMD, ["1002-vm"]],
        "1002-fw-options": [FWO, ["1002-vm", "1002-fw-reset"]],
        "1002-fw-rules": [FWR, ["1002-vm", "1002-fw-reset"]],
        "1002-wait": [CMD, ["1002-vm"]],
        "1002-feature-nfs_volumes": [CMD, ["1002-fw-options", "1002-fw-rules", "1002-wait"]],
        "1002-feature-base_setup": [CMD, ["1002-feature-nfs_volumes"]],
        "1002-feature-trusted_ca": [CMD, ["1002-feature-base_setup", "103-feature-step_ca"]],
        "1002-feature-step_cli": [CMD, ["1002-feature-trusted_ca"]],
        "1002-feature-docker": [CMD, ["1002-feature-step_cli"]],
        "1002-health": [CMD, ["1001-health", "1002-feature-docker"]],
    },
};

const spec = (id: number) => devSpec<VmSpec>(id);


describe("VmGuest", () => {
    let rec: Recording;
    before(async () => {
        rec = await recordDev();
        assert.equal(rec.error, undefined, rec.error?.message);
    });

    for (const [guest, children] of Object.entries(expectedChildren)) {
        it(`${guest}: children with their types, parent and exactly the dependencies they need`, () => {
            assertChildren(rec, guest, "phoenix:index:VmGuest", children);
        });
    }

    it("9000: downloads the image, uploads the vendor data, and creates the template from both (ids as values, the resources as dependencies)", () => {
        assert.deepEqual(inputs(rec, "9000-image"), {
            nodeName: "phoenix",
            contentType: "import",
            datastoreId: "local",
            url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
            fileName: "noble-server-cloudimg-amd64.qcow2",
            verify: true,
            uploadTimeout: 1800,
            overwrite: false,
            overwriteUnmanaged: true,
        });
        assert.deepEqual(rec.warnings, [
            "guest 9000: https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img is downloaded without a checksum, so nothing verifies it and a changing URL builds different guests from the same catalog; " +
                "pin a dated release URL with checksum and checksumAlgorithm (image in the guest file or defaults.yaml)",
        ], "the reference image has no checksum: pulumi up says so");
        const image = find(rec, "9000-image");
        assert.equal(image.deleteBeforeReplace, true, "same file name: delete before replace");
        assert.equal(image.retainOnDelete, true, "the image outlives the template");

        const vendor = inputs(rec, "9000-vendor-data");
        assert.deepEqual([vendor.nodeName, vendor.datastoreId, vendor.contentType, vendor.sourceRaw.fileName], ["phoenix", "local", "snippets", "phoenix-9000-vendor-data.yaml"]);
        const data: string = vendor.sourceRaw.data;
        assert.ok(data.startsWith("#cloud-config\n"), data);
        assert.match(data, /^packages:\n {2}- qemu-guest-agent\n {2}- nfs-common\n/m);
        assert.match(data, /^runcmd:\n {2}- \[systemctl, enable, --now, qemu-guest-agent\]\n/m);
        assert.equal(find(rec, "9000-vendor-data").deleteBeforeReplace, true);

        const tpl = find(rec, "9000-vm");
        assert.deepEqual(tpl.propertyDependencies.disks ?? [], [], "importFrom is the image's id as a value: a new download does not condemn the template");
        assert.ok(tpl.dependencies.includes(urnOf(rec, "9000-image")), "created after the download");
        assert.deepEqual(tpl.propertyDependencies.initialization ?? [], [], "vendorDataFileId is the snippet's id as a value (ForceNew: an input would condemn the VM with the snippet)");
        assert.ok(tpl.dependencies.includes(urnOf(rec, "9000-vendor-data")), "created after the snippet");
        assert.equal(tpl.deleteBeforeReplace, true);
        const t = inputs(rec, "9000-vm");
        assert.deepEqual([t.vmId, t.name, t.nodeName, t.template, t.started], [9000, "ubuntu-2404-cloud-template", "phoenix", true, false]);
        assert.equal(t.clone, undefined);
        assert.deepEqual(t.cpu, { cores: 2, type: "x86-64-v2-AES" });
        assert.deepEqual(t.memory, { dedicated: 4096 });
        assert.deepEqual([t.scsiHardware, t.operatingSystem, t.serialDevices, t.vga], ["virtio-scsi-single", { type: "l26" }, [{ device: "socket" }], { type: "serial0" }]);
        assert.deepEqual(t.disks, [{
            interface: "scsi0", datastoreId: "quickOS-vm-disks", importFrom: "local:import/noble-server-cloudimg-amd64.qcow2", size: 32, discard: "on", iothread: true, ssd: true,
        }]);
        assert.deepEqual(t.agent, { enabled: true, trim: true, type: "virtio" });
        assert.deepEqual(t.networkDevices, [{ bridge: "vmbr0", model: "virtio", firewall: true }]);
        assert.deepEqual(t.initialization, {
            datastoreId: "quickOS-vm-disks",
            interface: "ide2",
            type: "nocloud",
            vendorDataFileId: VENDOR_DATA_ID,
            userAccount: { username: "phoenix_user", keys: ["[secret sshPublicKeys]"] },
            dns: { servers: ["10.0.0.13"], domain: "internal.thinkheads.ai" },
            ipConfigs: [{ ipv4: { address: "dhcp" } }],
        });
    });

    it("9000: never boots, so no firewall, no wait and no steps; its clones wait for it to exist (a dependsOn, not an input)", () => {
        assert.deepEqual(childrenOf(rec, 9000).map((c) => c.name).sort(), ["9000-image", "9000-vendor-data", "9000-vm"]);
        for (const id of [1001, 1002]) {
            const vm = find(rec, `${id}-vm`);
            assert.deepEqual(vm.propertyDependencies.clone ?? [], [], `${id} clone.vmId is a value`);
            assert.ok(vm.dependencies.includes(urnOf(rec, "9000-vm")));
            assert.deepEqual(vm.ignoreChanges, ["clone"], "the clone block matters at creation only: a storage change moves the disks instead of re-cloning");
        }
    });

    it("1001 and 1002: clone 9000 with the catalog's sizes, addresses and cloud-init user, restating the template's disk", () => {
        const expected = {
            1001: { memory: 8192, disk: 32, ip: "10.0.0.111/24", name: "Portainer", startup: { order: 4, upDelay: 2, downDelay: 0 } },
            1002: { memory: 4096, disk: 64, ip: "10.0.0.102/24", name: "drphoenix", startup: { order: 5, upDelay: 2, downDelay: 0 } },
        };
        for (const [id, e] of Object.entries(expected)) {
            const v = inputs(rec, `${id}-vm`);
            assert.deepEqual(v.clone, { vmId: 9000, nodeName: "phoenix", datastoreId: "quickOS-vm-disks", full: true, retries: 3 });
            assert.deepEqual([v.vmId, v.name, v.nodeName, v.template, v.started, v.onBoot, v.stopOnDestroy], [Number(id), e.name, "phoenix", false, true, true, true]);
            assert.deepEqual(v.cpu, { cores: 4, type: "x86-64-v2-AES" });
            assert.deepEqual(v.memory, { dedicated: e.memory });
            assert.deepEqual(v.disks, [{ interface: "scsi0", datastoreId: "quickOS-vm-disks", size: e.disk, discard: "on", iothread: true, ssd: true }]);
            assert.deepEqual([v.scsiHardware, v.operatingSystem, v.serialDevices, v.vga], ["virtio-scsi-single", { type: "l26" }, [{ device: "socket" }], { type: "serial0" }]);
            assert.deepEqual(v.networkDevices, [{ bridge: "vmbr0", model: "virtio", firewall: true }]);
            assert.deepEqual(v.agent, { enabled: true, trim: true, type: "virtio", timeout: "600s", waitForIp: { ipv4: true } });
            assert.deepEqual(v.initialization, {
                datastoreId: "quickOS-vm-disks",
                interface: "ide2",
                type: "nocloud",
                vendorDataFileId: VENDOR_DATA_ID,
                userAccount: { username: "phoenix_user", keys: ["[secret sshPublicKeys]"] },
                dns: { servers: ["10.0.0.13"], domain: "internal.thinkheads.ai" },
                ipConfigs: [{ ipv4: { address: e.ip, gateway: "10.0.0.1" } }],
            });
            assert.deepEqual(find(rec, `${id}-vm`).propertyDependencies.initialization ?? [], [], "9000's vendor data, by its id");
            assert.deepEqual(v.startup, e.startup);
            assert.deepEqual([v.timeoutClone, v.timeoutStartVm], [1800, 600]);
            assert.equal(find(rec, `${id}-vm`).deleteBeforeReplace, true, "fixed vmId needs delete-before-replace");
            assert.equal(v.migrate, true, "a node change migrates the VM (vm.go ForceNewIf node_name only without migrate)");
            assert.deepEqual(find(rec, `${id}-vm`).ignoreChanges, ["clone"], "a clone is never re-created for its clone block");
        }
        assert.deepEqual([inputs(rec, "9000-vm").migrate, find(rec, "9000-vm").ignoreChanges], [true, []]);
    });

    it("serializes the clones of 9000: 1002's clone waits for 1001's VM, not the other way round", () => {
        assert.ok(find(rec, "1002-vm").dependencies.includes(urnOf(rec, "1001-vm")), "1002 is after 1001 in 9000's lane");
        assert.ok(!(find(rec, "1002-vm").propertyDependencies.clone ?? []).includes(urnOf(rec, "1001-vm")), "the lane is an explicit dependsOn, not the clone source");
        assert.deepEqual(find(rec, "1001-vm").dependencies.filter((u) => /::100[12]-/.test(u)), []);
    });

    it("gates only the application or health check on dependsOn: 1001's on 102's readiness, 1002's on 1001's; the VM, wait and first features are not gated", () => {
        assert.ok(find(rec, "1001-app").dependencies.includes(urnOf(rec, "102-health")), "102's last step: its health check");
        assert.ok(find(rec, "1002-health").dependencies.includes(urnOf(rec, "1001-health")));
        for (const id of [1001, 1002]) {
            for (const early of [`${id}-vm`, `${id}-wait`, `${id}-feature-nfs_volumes`, `${id}-feature-base_setup`]) {
                const others = [102, 1001].filter((g) => g !== id);
                const gated = find(rec, early).dependencies.filter((u) => others.some((g) => u.includes(`::${g}-`)) && !(early === "1002-vm" && u === urnOf(rec, "1001-vm")));
                assert.deepEqual(gated, [], `${early} must not wait for 102's or 1001's steps`);
            }
        }
    });

    it("feeds 103's CA root into trusted_ca (a property dependency of its command), and runs the features in catalog order", () => {
        for (const id of [1001, 1002]) {
            const trusted = find(rec, `${id}-feature-trusted_ca`);
            assert.deepEqual(names(trusted.propertyDependencies.create), ["103-feature-step_ca"]);
            const create: string = inputs(rec, `${id}-feature-trusted_ca`).create;
            assert.ok(create.includes(`CA_ROOT_PEM='${MOCK_CA_PEM}\n'`) && create.includes(`CA_FINGERPRINT='${MOCK_CA_FINGERPRINT}'`), create);
            // Each step waits for the one before it: walk the chain back from the health check.
            const chain: string[] = [];
            for (let r = find(rec, `${id}-health`); ; ) {
                chain.unshift(r.name);
                const prev = r.dependencies.map((u) => rec.registrations.find((x) => x.urn === u)!).find((x) => x.name.startsWith(`${id}-feature-`) || x.name === `${id}-app`);
                if (!prev) break;
                r = prev;
            }
            const app = id === 1001 ? ["app"] : []; // 1001 runs Portainer
            assert.deepEqual(chain.map((n) => n.slice(String(id).length + 1)), ["feature-nfs_volumes", "feature-base_setup", "feature-trusted_ca", "feature-step_cli", "feature-docker", ...app, "health"]);
        }
    });

    it("mounts the catalog's NFS volume first: the nfs_volumes step gets the quoted NFS_VOLUMES line", () => {
        assert.match(inputs(rec, "1001-feature-nfs_volumes").create, / NFS_VOLUMES='10\.0\.0\.13:\/quickOS\/vm-persistent-data\/1001 \/persistent-storage defaults,_netdev,nofail' bash -s$/);
        assert.match(inputs(rec, "1002-feature-nfs_volumes").create, / NFS_VOLUMES='10\.0\.0\.13:\/quickOS\/vm-persistent-data\/1002 \/persistent-storage defaults,_netdev,nofail' /);
        assert.equal(inputs(rec, "1001-feature-nfs_volumes").stdin, fs.readFileSync(path.join(ROOT, "features/lib/common.sh"), "utf8") + "\n" + fs.readFileSync(path.join(ROOT, "features/nfs_volumes.sh"), "utf8"));
    });

    it("renders one in-guest run exactly: sudo with the quoted environment, over SSH to the VM through the node", () => {
        const raw = find(rec, "1001-feature-step_cli").inputs;
        assert.ok(isSecretValue(raw.connection), "the connection carries private keys");
        const step = unwrapSecrets(raw);
        assert.equal(step.create, "sudo env PHOENIX_GUEST_ID='1001' PHOENIX_HOSTNAME='Portainer' bash -s");
        assert.equal(step.stdin, fs.readFileSync(path.join(ROOT, "features/lib/common.sh"), "utf8") + "\n" + fs.readFileSync(path.join(ROOT, "features/step_cli.sh"), "utf8"));
        const c = step.connection;
        assert.deepEqual([c.host, c.port, c.user, c.privateKey, c.dialErrorLimit, c.perDialTimeout], ["10.0.0.111", 22, "phoenix_user", "[secret guestSshPrivateKey]", 60, 15]);
        assert.deepEqual([c.proxy.host, c.proxy.port, c.proxy.user, c.proxy.privateKey], ["10.0.0.13", 22, "root", "[secret sshPrivateKey]"]);
        assert.equal(guestRunScript("A='x y'"), "sudo env A='x y' bash -s");
    });

    it("keeps SSH keys secret (the whole cloud-init block) and puts no secret in any plain input", () => {
        for (const id of [9000, 1001, 1002]) {
            const init = find(rec, `${id}-vm`).inputs.initialization;
            assert.ok(isSecretValue(init), `${id} initialization carries the keys: secret`);
            assert.equal(unwrapSecrets(init).userAccount.password, undefined, "no passwordSecret in the catalog: key login only");
        }
        for (const r of rec.registrations) {
            for (const s of plainStrings(r.inputs)) assert.ok(!s.includes("[secret "), `${r.name} has a secret in a plain input: ${s.slice(0, 80)}`);
        }
    });

    it("firewall: options scoped by the VM's vmId output, SSH from the node first, then the catalog's rules in order", () => {
        for (const id of [1001, 1002]) {
            const opts = inputs(rec, `${id}-fw-options`);
            assert.deepEqual([opts.enabled, opts.inputPolicy, opts.outputPolicy, opts.vmId, opts.nodeName, opts.dhcp], [true, "DROP", "ACCEPT", id, "phoenix", false]);
            assert.deepEqual(names(find(rec, `${id}-fw-options`).propertyDependencies.vmId), [`${id}-vm`]);
            assert.deepEqual(names(find(rec, `${id}-fw-rules`).propertyDependencies.vmId), [`${id}-vm`]);
            const rules = inputs(rec, `${id}-fw-rules`).rules;
            assert.deepEqual(rules[0], { type: "in", action: "ACCEPT", proto: "tcp", dport: "22", source: "10.0.0.13", comment: "Phoenix: SSH from the Proxmox node for provisioning", enabled: true });
            assert.deepEqual(rules.slice(1), spec(id).firewall.rules);
        }
        assert.deepEqual(inputs(rec, "1002-fw-rules").rules.map((r: any) => `${r.type} ${r.source ?? "any"}:${r.dport}`), [
            "in 10.0.0.13:22", "in 10.0.0.111:9001", "in 10.0.0.13:9001", "in any:6333", "in any:6334",
        ]);
        assert.equal(sshFromNodeRule("pve.lan").source, undefined, "a host name cannot be a firewall source");
    });

    it("waits on the node for the agent, the catalog IP and cloud-init, bounded by agentTimeoutSeconds", () => {
        assert.equal(inputs(rec, "1001-wait").create, waitScript(1001, "10.0.0.111", 600, VENDOR_DATA_ID));
        assert.equal(inputs(rec, "1002-wait").create, waitScript(1002, "10.0.0.102", 600, VENDOR_DATA_ID));
        assert.equal(inputs(rec, "1001-wait").connection.host, "10.0.0.13", "runs on the node");
        const s = waitScript(1001, "10.0.0.111", 600, VENDOR_DATA_ID);
        assert.ok(s.includes(`echo 'VM 1001: guest agent did not answer within 600s; is qemu-guest-agent installed (vendor-data snippet ${VENDOR_DATA_ID})?' >&2; exit 1`), s);
        assert.ok(s.includes(`qm guest cmd 1001 network-get-interfaces 2>/dev/null | grep -Eq '"ip-address" *: *"10\\.0\\.0\\.111"'`), s);
        assert.ok(s.includes(`qm guest exec 1001 --timeout "$left" -- cloud-init status --wait`), s);
    });

    describe("the wait script against a stub qm", () => {
        const ifaces = (ip: string) => `[\n   {\n      "ip-addresses" : [\n         {\n            "ip-address" : "127.0.0.1",\n            "ip-address-type" : "ipv4"\n         }\n      ],\n      "name" : "lo"\n   },\n   {\n      "ip-addresses" : [\n         {\n            "ip-address" : "${ip}",\n            "ip-address-type" : "ipv4",\n            "prefix" : 24\n         }\n      ],\n      "name" : "eth0"\n   }\n]`;
        const execOut = (exitcode: number) => `{\n   "exitcode" : ${exitcode},\n   "exited" : 1,\n   "out-data" : "status: done\\n"\n}`;
        let bin: string;
        before(() => {
            bin = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-qm-"));
            fs.writeFileSync(path.join(bin, "qm"), [
                "#!/usr/bin/env bash",
                'echo "$*" >> "$QM_LOG"',
                'case "$1 $2 $4" in',
                '  "guest cmd ping") exit "$QM_PING_RC" ;;',
                '  "guest cmd network-get-interfaces") printf "%s\\n" "$QM_IFACES" ;;',
                '  "guest exec "*) printf "%s\\n" "$QM_EXEC_OUT" ;;',
                "  *) exit 2 ;;",
                "esac",
                "",
            ].join("\n"), { mode: 0o755 });
        });
        after(() => fs.rmSync(bin, { recursive: true, force: true }));
        // Timeout 0: every check that fails once fails for good, so no test sleeps.
        const run = (qm: { ping?: number; ip?: string; exec?: string }) => {
            const log = path.join(bin, `log-${Math.random()}`);
            const r = spawnSync("bash", ["-c", waitScript(1001, "10.0.0.111", 0, VENDOR_DATA_ID)], {
                encoding: "utf8",
                // stdin from /dev/null: on a socket, bash believes sshd started it and reads ~/.bashrc.
                stdio: ["ignore", "pipe", "pipe"],
                env: { PATH: `${bin}:${process.env.PATH}`, QM_LOG: log, QM_PING_RC: String(qm.ping ?? 0), QM_IFACES: ifaces(qm.ip ?? "10.0.0.111"), QM_EXEC_OUT: qm.exec ?? execOut(0) },
            });
            return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls: fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [] };
        };

        it("succeeds when the agent answers, the IP is reported and cloud-init finished", () => {
            const r = run({});
            assert.equal(r.status, 0, r.stderr);
            assert.deepEqual(r.calls, ["guest cmd 1001 ping", "guest cmd 1001 network-get-interfaces", "guest exec 1001 --timeout 1 -- cloud-init status --wait"]);
            assert.match(r.stdout, /VM 1001: cloud-init done/);
        });
        it("accepts cloud-init's recoverable-errors exit code 2", () => {
            const r = run({ exec: execOut(2) });
            assert.equal(r.status, 0, r.stderr);
            assert.match(r.stdout, /recoverable errors/);
        });
        it("fails with the agent hint when the agent never answers", () => {
            const r = run({ ping: 1 });
            assert.equal(r.status, 1);
            assert.equal(r.stderr.trim(), `VM 1001: guest agent did not answer within 0s; is qemu-guest-agent installed (vendor-data snippet ${VENDOR_DATA_ID})?`);
        });
        it("fails when the guest reports another address (no prefix match: 10.0.0.1111 is not 10.0.0.111)", () => {
            for (const ip of ["10.0.0.112", "10.0.0.1111", "10.0.0.11"]) {
                const r = run({ ip });
                assert.equal(r.status, 1, ip);
                assert.match(r.stderr, /VM 1001: the guest did not report 10\.0\.0\.111 within 0s; check its cloud-init network/);
            }
        });
        it("fails when cloud-init fails, although qm guest exec itself exits 0", () => {
            const r = run({ exec: execOut(1) });
            assert.equal(r.status, 1);
            assert.match(r.stderr, /^VM 1001: cloud-init failed, exit code 1: \{/);
        });
        it("fails when qm guest exec times out and prints only the pid", () => {
            const r = run({ exec: '{\n   "pid" : 4242\n}' });
            assert.equal(r.status, 1);
            assert.equal(r.stderr.trim(), "VM 1001: cloud-init did not finish within 0s");
        });
    });

    it("maps a VM built straight from the image (no clone): importFrom, no clone block, dhcp", () => {
        const s = { ...spec(1001), cloneFrom: undefined, network: { ...spec(1001).network, ip: "dhcp", gateway: undefined } };
        const args = vmArgs(s, { importFrom: "local:import/x.qcow2", vendorDataFileId: "local:snippets/v.yaml", sshPublicKeys: ["k"] }) as any;
        assert.equal(args.clone, undefined);
        assert.equal(args.disks[0].importFrom, "local:import/x.qcow2");
        assert.deepEqual(args.initialization.ipConfigs, [{ ipv4: { address: "dhcp" } }]);
        assert.deepEqual(args.initialization.userAccount, { username: "phoenix_user", keys: ["k"] });
    });
});

describe("VmGuest on an edited catalog (a password for 1001, 1002 depending on the template too)", () => {
    let rec: Recording;
    before(async () => {
        const dir = catalogCopy({
            "1001-portainer.yaml": (s) => s.replace("cloudInit:\n  user: phoenix_user\n", "cloudInit:\n  user: phoenix_user\n  passwordSecret: portainerVmPassword\n"),
            "1002-drphoenix.yaml": (s) => s.replace("dependsOn: [1001]", "dependsOn: [1001, 9000]"),
        });
        const sc = readStackConfig("dev");
        rec = await recordProgram({
            config: { ...sc.config, "phoenix:catalog": dir, "phoenix:portainerVmPassword": "[secret portainerVmPassword]" },
            secretKeys: [...sc.secretKeys, "phoenix:portainerVmPassword"],
        });
        assert.equal(rec.error, undefined, rec.error?.message);
    });

    it("passes the stack secret named by passwordSecret, as a secret, to that VM only", () => {
        const init = find(rec, "1001-vm").inputs.initialization;
        assert.ok(isSecretValue(init));
        assert.deepEqual(unwrapSecrets(init).userAccount, { username: "phoenix_user", keys: ["[secret sshPublicKeys]"], password: "[secret portainerVmPassword]" });
        assert.equal(unwrapSecrets(find(rec, "1002-vm").inputs.initialization).userAccount.password, undefined);
        for (const r of rec.registrations) {
            for (const s of plainStrings(r.inputs)) assert.ok(!s.includes("[secret "), `${r.name} has a secret in a plain input: ${s.slice(0, 80)}`);
        }
    });

    it("warns that the password is set once, at creation, and how to change it (the provider never sends a change of it)", () => {
        assert.deepEqual(rec.warnings.filter((w) => w.includes("password")), [
            "guest 1001: the cloud-init password (stack config portainerVmPassword) is set once, when the VM is created; the provider never sends a later change of it (Proxmox returns it masked). " +
                "To change it, change it in the VM (ssh phoenix_user@<vm> sudo passwd phoenix_user); a new value of portainerVmPassword only reaches VMs created afterwards",
        ]);
    });

    it("a template is ready once its VM exists: a guest depending on it gates its health check on 9000-vm", () => {
        assert.deepEqual(names(find(rec, "1002-health").dependencies), ["1001-health", "1002-feature-docker", "1002-vm", "9000-vm"]);
    });
});

describe("VmGuest readiness on an edited catalog (the VM template 9000 depending on 103)", () => {
    let rec: Recording;
    before(async () => {
        const dir = catalogCopy({
            "9000-ubuntu-cloud-template.yaml": (s) => s.replace("template: true\n", "template: true\ndependsOn: [103]\n"),
            "1002-drphoenix.yaml": (s) => s.replace("dependsOn: [1001]", "dependsOn: [1001, 9000]"),
        });
        const sc = readStackConfig("dev");
        rec = await recordProgram({ config: { ...sc.config, "phoenix:catalog": dir }, secretKeys: sc.secretKeys });
        assert.equal(rec.error, undefined, rec.error?.message);
    });

    it("a VM template is created (as a template) only once its dependencies are ready, so it is never cloned before them", () => {
        assert.deepEqual(names(find(rec, "9000-vm").dependencies), ["103-health", "9000-image", "9000-vendor-data"], "the creation is the gated step");
        assert.deepEqual(names(find(rec, "1002-health").dependencies), ["1001-health", "1002-feature-docker", "1002-vm", "9000-vm"], "9000's readiness is its VM, which implies 103");
        assert.ok(find(rec, "1001-vm").dependencies.includes(urnOf(rec, "9000-vm")), "the clone waits for the template, created after 103");
    });
});

/** Whether `from` waits for `to`, directly or through other resources' dependencies. */
const reaches = (rec: Recording, from: string, to: string): boolean => {
    const seen = new Set<string>();
    const stack = [from];
    while (stack.length > 0) {
        const n = stack.pop()!;
        if (n === to) return true;
        if (seen.has(n)) continue;
        seen.add(n);
        stack.push(...names(find(rec, n).dependencies));
    }
    return false;
};

describe("VmGuest readiness is transitive through the chain, never listed", () => {
    let rec: Recording;
    before(async () => {
        const sc = readStackConfig("dev");
        rec = await recordProgram({ config: sc.config, secretKeys: sc.secretKeys });
    });

    it("1002's health check waits for 1001 only, and through it for 102 and 103", () => {
        const health = find(rec, "1002-health");
        assert.ok(!names(health.dependencies).includes("103-health"), "103 is implied by 1001's chain, not listed");
        for (const upstream of ["1001-health", "102-app", "103-health"]) assert.ok(reaches(rec, "1002-health", upstream), `1002-health waits for ${upstream}`);
    });
});

describe("VM catalog rules", () => {
    const problemsOf = (file: string, edit: (s: string) => string): string[] => {
        const dir = catalogCopy({ [file]: edit });
        try {
            loadCatalog({ dir, node: "pve", baseDir: ROOT });
        } catch (e) {
            assert.ok(e instanceof CatalogError, `expected a CatalogError, got ${e}`);
            return e.problems.map((p) => `${path.basename(p.file)}:${p.line}:${p.col} ${p.field}: ${p.message}`);
        }
        return [];
    };

    it("rejects in-guest steps on a VM without a static address (they run over SSH to it)", () => {
        assert.deepEqual(problemsOf("1001-portainer.yaml", (s) => s.replace("ip: 10.0.0.111/24", "ip: dhcp")), [
            '1001-portainer.yaml:13:7 network.ip: a VM with features, nfsVolumes, application, healthCheck needs a static address ("10.0.0.20/24"): its steps run over SSH to that address',
            "1001-portainer.yaml:27:24 application.script: apps/portainer.sh requires GUEST_ADDRESS (This guest's address, the certificate's subject (Phoenix derives it)); set a static network.ip (Phoenix derives GUEST_ADDRESS from it)",
        ]);
    });

    it("rejects steps, snapshots and firewall rules on a VM template, which never boots", () => {
        const edit = (s: string) => `${s}features: [base_setup]\nlifecycleSnapshots: true\nfirewall:\n  rules:\n    - { type: in, action: ACCEPT, proto: tcp, dport: "22" }\n`;
        const never = "a VM template never boots, so this would never apply; put it on the VMs that clone this template";
        assert.deepEqual(problemsOf("9000-ubuntu-cloud-template.yaml", edit), [
            `9000-ubuntu-cloud-template.yaml:18:1 features: ${never}`,
            `9000-ubuntu-cloud-template.yaml:19:1 lifecycleSnapshots: ${never}`,
            `9000-ubuntu-cloud-template.yaml:20:1 firewall: ${never}`,
        ]);
    });

    it("accepts the reference catalog's VMs (a DHCP template without steps)", () => {
        assert.deepEqual(problemsOf("9000-ubuntu-cloud-template.yaml", (s) => s), []);
    });
});
