import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type Recording, MOCK_CA_FINGERPRINT, MOCK_CA_PEM, isSecretValue, unwrapSecrets } from "../plan/engine";
import { sha256, shq } from "../components/shell";
import { NOTHING_TO_RERUN } from "../components/command";
import { caRootPrintCommand, parseCaOutput } from "../components/guest";
import { containerArgs, hostId, rawConfigLines, rawConfigScript, startScript, subIdScript, templateScript } from "../components/lxc";
import type { LxcSpec } from "../catalog/model";
import { ROOT, assertChildren, catalogCopy, childrenOf, devSpec, find, inputs, names, plainStrings, recordDev, urnOf } from "./helpers";

const CT = "proxmoxve:index/containerLegacy:ContainerLegacy";
const CMD = "command:remote:Command";
const FWO = "proxmoxve:firewall/optionsLegacy:OptionsLegacy";
const FWR = "proxmoxve:firewall/rulesLegacy:RulesLegacy";

// Every child of the four containers with its type and exactly the resources it waits for. An edge removed from
// or added to the program changes one of these lines.
const expectedChildren: Record<number, Record<string, [string, string[]]>> = {
    900: {
        "900-ct": [CT, []],
        "900-lxc-conf": [CMD, ["900-ct"]],
        "900-fw-options": [FWO, ["900-ct"]],
        "900-fw-rules": [FWR, ["900-ct"]],
        "900-start": [CMD, ["900-ct", "900-fw-options", "900-fw-rules", "900-lxc-conf"]],
        "900-feature-base_setup": [CMD, ["900-start"]],
        "900-template": [CMD, ["900-feature-base_setup"]],
    },
    103: {
        "103-host-dirs": [CMD, []],
        "103-ct": [CT, ["103-host-dirs", "900-template"]],
        "103-resize": [CMD, ["103-ct"]],
        "103-fw-reset": [CMD, ["103-ct"]],
        "103-lxc-conf": [CMD, ["103-ct"]],
        "103-fw-options": [FWO, ["103-ct", "103-fw-reset"]],
        "103-fw-rules": [FWR, ["103-ct", "103-fw-reset"]],
        "103-start": [CMD, ["103-ct", "103-fw-options", "103-fw-rules", "103-lxc-conf", "103-resize"]],
        "103-feature-base_setup": [CMD, ["103-start"]],
        "103-feature-step_ca": [CMD, ["103-feature-base_setup"]],
        "103-app": [CMD, ["103-feature-step_ca"]],
        "103-health": [CMD, ["103-app"]],
    },
    101: {
        "101-subids": [CMD, []],
        "101-host-dirs": [CMD, []],
        // 103-ct: the clone lane (one clone of 900 at a time); 900-template: the clone source's last step.
        "101-ct": [CT, ["101-host-dirs", "101-subids", "103-ct", "900-template"]],
        "101-resize": [CMD, ["101-ct"]],
        "101-fw-reset": [CMD, ["101-ct"]],
        "101-lxc-conf": [CMD, ["101-ct"]],
        "101-fw-options": [FWO, ["101-ct", "101-fw-reset"]],
        "101-fw-rules": [FWR, ["101-ct", "101-fw-reset"]],
        "101-start": [CMD, ["101-ct", "101-fw-options", "101-fw-rules", "101-lxc-conf", "101-resize"]],
        "101-feature-base_setup": [CMD, ["101-start"]],
        "101-feature-trusted_ca": [CMD, ["101-feature-base_setup", "103-feature-step_ca"]],
        "101-feature-step_cli": [CMD, ["101-feature-trusted_ca"]],
        "101-app": [CMD, ["101-feature-step_cli", "103-health"]],
        // The routes: it checks every one end to end, through Traefik (102) to each target (103, 1001).
        "101-health": [CMD, ["101-app", "1001-health", "102-health", "103-health"]],
    },
    102: {
        "102-host-dirs": [CMD, []],
        "102-ct": [CT, ["101-ct", "102-host-dirs", "900-template"]],
        "102-resize": [CMD, ["102-ct"]],
        "102-fw-reset": [CMD, ["102-ct"]],
        "102-lxc-conf": [CMD, ["102-ct"]],
        "102-fw-options": [FWO, ["102-ct", "102-fw-reset"]],
        "102-fw-rules": [FWR, ["102-ct", "102-fw-reset"]],
        "102-start": [CMD, ["102-ct", "102-fw-options", "102-fw-rules", "102-lxc-conf", "102-resize"]],
        "102-feature-base_setup": [CMD, ["102-start"]],
        "102-feature-trusted_ca": [CMD, ["102-feature-base_setup", "103-feature-step_ca"]],
        "102-feature-step_cli": [CMD, ["102-feature-trusted_ca"]],
        "102-feature-traefik": [CMD, ["102-feature-step_cli"]],
        // 101-app: loading the routes orders their certificates, whose ACME challenges the gateway's application forwards.
        "102-app": [CMD, ["101-app", "102-feature-traefik", "103-health"]],
        "102-health": [CMD, ["102-app"]],
    },
};

const spec = (id: number) => devSpec<LxcSpec>(id);


describe("LxcGuest", () => {
    let rec: Recording;
    before(async () => {
        rec = await recordDev();
        assert.equal(rec.error, undefined, rec.error?.message);
    });

    for (const [guest, children] of Object.entries(expectedChildren)) {
        it(`${guest}: children in order, with their types, parent and exactly the dependencies they need`, () => {
            assertChildren(rec, guest, "phoenix:index:LxcGuest", children);
        });
    }

    it("clones 103, 101 and 102 from 900 once 900 became a template: a dependsOn, so rebuilding 900 does not condemn its clones", () => {
        for (const id of [103, 101, 102]) {
            const ct = find(rec, `${id}-ct`);
            assert.deepEqual(ct.propertyDependencies.clone ?? [], [], `${id} clone.vmId is a value`);
            assert.ok(ct.dependencies.includes(urnOf(rec, "900-template")), `${id} waits for 900's conversion`);
            assert.deepEqual(inputs(rec, `${id}-ct`).clone, { vmId: 900, nodeName: "phoenix", datastoreId: "quickOS-lxc-disks", full: true });
            assert.equal(inputs(rec, `${id}-ct`).operatingSystem, undefined);
        }
        assert.deepEqual(inputs(rec, "900-ct").operatingSystem, { templateFileId: "fastData-shared-iso:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst", type: "ubuntu" });
    });

    it("gates 101's and 102's application on 103's readiness, and their trusted_ca on 103's CA output, but not their containers or base_setup", () => {
        for (const id of [101, 102]) {
            assert.ok(find(rec, `${id}-app`).dependencies.includes(urnOf(rec, "103-health")), `${id}-app waits for 103 ready (its last step)`);
            const trusted = find(rec, `${id}-feature-trusted_ca`);
            assert.deepEqual(names(trusted.propertyDependencies.create), ["103-feature-step_ca"], "the CA root flows into the command");
            const create = inputs(rec, `${id}-feature-trusted_ca`).create as string;
            assert.ok(create.includes(`CA_ROOT_PEM='${MOCK_CA_PEM}\n'`) && create.includes(`CA_FINGERPRINT='${MOCK_CA_FINGERPRINT}'`), create);
            for (const early of [`${id}-ct`, `${id}-start`, `${id}-feature-base_setup`]) {
                const from103 = find(rec, early).dependencies.filter((u) => /::103-/.test(u) && !u.endsWith("::103-ct"));
                assert.deepEqual(from103, [], `${early} must not wait for 103's steps`);
            }
        }
    });

    it("builds each container's inputs from the catalog, value by value", () => {
        for (const id of [900, 103, 101, 102]) {
            const s = spec(id);
            const got = inputs(rec, `${id}-ct`);
            assert.equal(got.vmId, id);
            assert.deepEqual(got.cpu, { cores: s.cores });
            assert.deepEqual(got.memory, { dedicated: s.memoryMb, swap: s.swapMb });
            assert.deepEqual(got.disk, { datastoreId: "quickOS-lxc-disks", size: s.diskGb });
            assert.deepEqual(got.networkInterfaces, [{ name: "eth0", bridge: "vmbr0", macAddress: s.network.mac, firewall: true, enabled: true }]);
            assert.deepEqual(got.initialization, {
                hostname: s.name,
                ipConfigs: [{ ipv4: { address: s.network.ip, gateway: "10.0.0.1" } }],
                dns: { domain: "internal.thinkheads.ai", servers: s.network.nameservers },
            });
            assert.deepEqual(got.startup, s.startup);
            assert.equal(got.startOnBoot, s.startOnBoot);
            assert.equal(got.unprivileged, true);
            assert.equal(got.started, false, "started by the start step, after the raw config");
            assert.equal(find(rec, `${id}-ct`).deleteBeforeReplace, true, "fixed vmId needs delete-before-replace");
            // A clone is never re-created for its clone block; its disk size is its resize step's (the provider stores the source's at create).
            assert.deepEqual(find(rec, `${id}-ct`).ignoreChanges.sort(), id === 900 ? ["started", "template"] : ["clone", "disk.size", "started", "template"]);
        }
        // The reference values, spelled out.
        const ct101 = inputs(rec, "101-ct");
        assert.deepEqual([ct101.cpu.cores, ct101.memory.dedicated, ct101.memory.swap, ct101.disk.size], [4, 4096, 512, 32]);
        assert.deepEqual(ct101.features, { nesting: true, keyctl: false, fuse: false });
        assert.deepEqual(ct101.mountPoints, [
            { volume: "/mnt/pve/quickOS/lxc-persistent-data/101/logs", path: "/var/log/nginx", readOnly: false },
            { volume: "/mnt/pve/quickOS/lxc-persistent-data/101/ssl", path: "/etc/nginx/ssl", readOnly: false },
        ]);
        assert.deepEqual(ct101.idmaps, [
            { type: "uid", containerId: 0, hostId: 100000, size: 65536 },
            { type: "gid", containerId: 0, hostId: 100000, size: 33 },
            { type: "gid", containerId: 33, hostId: 33, size: 1 },
            { type: "gid", containerId: 34, hostId: 100034, size: 65502 },
        ]);
        assert.deepEqual(inputs(rec, "103-ct").initialization.ipConfigs, [{ ipv4: { address: "10.0.0.10/24", gateway: "10.0.0.1" } }]);
        assert.deepEqual(inputs(rec, "900-ct").initialization.dns, { domain: "internal.thinkheads.ai", servers: ["8.8.8.8"] });
        assert.deepEqual(inputs(rec, "103-ct").startup, { order: 1, upDelay: 5, downDelay: 5 });
        for (const id of [900, 103, 101, 102]) assert.equal(find(rec, `${id}-ct`).protect, true, "containers are protected by default");
    });

    it("enables each guest firewall with default-deny input and applies the catalog's rules in order", () => {
        for (const id of [900, 103, 101, 102]) {
            const opts = inputs(rec, `${id}-fw-options`);
            assert.deepEqual([opts.enabled, opts.inputPolicy, opts.outputPolicy, opts.containerId, opts.nodeName], [true, "DROP", "ACCEPT", id, "phoenix"]);
            assert.deepEqual(names(find(rec, `${id}-fw-options`).propertyDependencies.containerId), [`${id}-ct`], "scope comes from the container's output");
            const rules = inputs(rec, `${id}-fw-rules`).rules;
            assert.deepEqual(rules, spec(id).firewall.rules);
        }
        assert.deepEqual(inputs(rec, "103-fw-rules").rules.map((r: any) => `${r.type} ${r.dest ?? r.source}:${r.dport}`), [
            "out 10.0.0.153:443", "out 10.0.0.153:80", "in 10.0.0.12:9000", "in 10.0.0.153:9000", "out 10.0.0.13:53", "in 10.0.0.111:9000",
        ]);
    });

    it("runs the features in catalog order inside the right container", () => {
        const order = (id: number) => childrenOf(rec, id).filter((c) => /-(feature-|snap-|app$|health$|template$)/.test(c.name)).map((c) => c.name.slice(String(id).length + 1));
        assert.deepEqual(order(103), ["feature-base_setup", "feature-step_ca", "app", "health"]);
        assert.deepEqual(order(102), ["feature-base_setup", "feature-trusted_ca", "feature-step_cli", "feature-traefik", "app", "health"]);
        assert.deepEqual(order(900), ["feature-base_setup", "template"]);
        for (const id of [900, 103, 101, 102]) {
            for (const c of childrenOf(rec, id).filter((x) => x.name.includes("-feature-"))) {
                assert.match(inputs(rec, c.name).create, new RegExp(`(^|\\n)pct exec ${id} -- env PHOENIX_GUEST_ID='${id}' `), c.name);
            }
        }
    });

    it("guards every step of a template: once converted, re-provisioning fails with what to do instead", () => {
        const guard = "if pct config 900 | grep -q '^template: 1'; then echo 'guest 900 is already a template; to re-provision it, replace it: pulumi up --replace <urn of 900-ct>' >&2; exit 1; fi\n";
        for (const step of ["900-feature-base_setup", "900-start", "900-lxc-conf"]) assert.ok(inputs(rec, step).create.startsWith(guard), step);
        assert.equal(inputs(rec, "900-template").create, templateScript(900), "the conversion itself is idempotent instead");
        assert.ok(!inputs(rec, "103-start").create.includes("template: 1"), "no guard on a guest that is not a template");
    });

    it("freezes a template's steps once it exists (a changed script would run on a template), not its clones' or its conversion", () => {
        for (const c of childrenOf(rec, 900).filter((x) => x.type === CMD)) {
            assert.deepEqual(c.ignoreChanges, c.name === "900-template" ? [] : ["create", "stdin", "triggers"], c.name);
        }
        // A clone's firewall reset runs once whatever its connection, text or triggers become (it clears what the
        // clone copied; run again, it would clear the catalog's firewall): only the machine's replacement re-runs it.
        for (const c of childrenOf(rec, 101).filter((x) => x.type === CMD)) assert.deepEqual(c.ignoreChanges, c.name === "101-fw-reset" ? ["connection", "create", "triggers"] : [], c.name);
    });

    describe("with lifecycle snapshots (102 without its bind mount, which Proxmox cannot snapshot)", () => {
        let snap: Recording;
        before(async () => {
            const dir = catalogCopy({
                "102-traefik-internal.yaml": (t) => t.replace(/bindMounts:\n  - .*\n/, "").replace("startOnBoot: true", "startOnBoot: true\nlifecycleSnapshots: true"),
            });
            snap = await recordDev({ "phoenix:catalog": dir });
            assert.equal(snap.error, undefined, snap.error?.message);
        });

        it("takes pre-configured before the features and final-form after the application", () => {
            const order = childrenOf(snap, 102).filter((c) => /-(feature-|snap-|app$)/.test(c.name)).map((c) => c.name.slice(4));
            assert.deepEqual(order, ["snap-pre-configured", "feature-base_setup", "feature-trusted_ca", "feature-step_cli", "feature-traefik", "app", "snap-final-form"]);
            assert.ok(find(snap, "102-snap-pre-configured").dependencies.includes(urnOf(snap, "102-start")));
            assert.ok(find(snap, "102-feature-base_setup").dependencies.includes(urnOf(snap, "102-snap-pre-configured")));
            assert.ok(find(snap, "102-snap-final-form").dependencies.includes(urnOf(snap, "102-app")));
            assert.equal(inputs(snap, "102-snap-pre-configured").create,
                "if pct listsnapshot 102 | grep -qw -- 'pre-configured'; then pct delsnapshot 102 'pre-configured'; fi; pct snapshot 102 'pre-configured' --description 'Phoenix lifecycle snapshot'");
        });

        it("re-takes final-form when any earlier step changes, deleting the old one first (same name)", () => {
            const final = find(snap, "102-snap-final-form");
            assert.deepEqual(names(final.propertyDependencies.triggers), ["102-app", "102-feature-base_setup", "102-feature-step_cli", "102-feature-traefik", "102-feature-trusted_ca", "102-health", "102-snap-pre-configured"]);
            assert.equal(final.deleteBeforeReplace, true);
            const triggers = inputs(snap, "102-snap-final-form").triggers as string[];
            // Only a replacement re-runs a step (a new CA root changes trusted_ca's triggers too), and it gets a new id.
            assert.deepEqual(triggers.slice(1), ["102-snap-pre-configured", "102-feature-base_setup", "102-feature-trusted_ca", "102-feature-step_cli", "102-feature-traefik", "102-app", "102-health"].map((n) => `${n}-id`));
            assert.equal(triggers[0], sha256(inputs(snap, "102-snap-final-form").create, ""), "and its own command line");
            assert.equal(final.inputs.delete, "if pct listsnapshot 102 2>/dev/null | grep -qw -- 'final-form'; then pct delsnapshot 102 'final-form'; fi");
            assert.ok(find(snap, "101-app").dependencies.includes(urnOf(snap, "103-health")));
            assert.ok(find(snap, "102-app").dependencies.includes(urnOf(snap, "103-health")), "the gate stays on the application");
        });
    });

    it("renders one feature run exactly: the environment quoted on the command line, the script on stdin", () => {
        const step = inputs(rec, "101-feature-step_cli");
        assert.equal(step.create, "pct exec 101 -- env PHOENIX_GUEST_ID='101' PHOENIX_HOSTNAME='Nginx-Phoenix' bash -s");
        assert.equal(step.stdin, fs.readFileSync(path.join(ROOT, "features/lib/common.sh"), "utf8") + "\n" + fs.readFileSync(path.join(ROOT, "features/step_cli.sh"), "utf8"));
        assert.equal(step.connection.host, "10.0.0.13");
        assert.equal(step.connection.user, "root");
        assert.equal(step.triggers.length, 1);
        assert.match(step.triggers[0], /^[0-9a-f]{64}$/);
        const base = inputs(rec, "101-feature-base_setup");
        assert.equal(base.create, "pct exec 101 -- env PHOENIX_GUEST_ID='101' PHOENIX_HOSTNAME='Nginx-Phoenix' TIMEZONE='America/New_York' bash -s");
    });

    it("passes the CA passwords only on stdin, as a secret, never on a command line", () => {
        const raw = find(rec, "103-feature-step_ca").inputs;
        assert.ok(isSecretValue(raw.stdin), "stdin carrying passwords is a secret");
        assert.ok(!isSecretValue(raw.create));
        assert.ok(!String(raw.create).includes("secret"), raw.create);
        const stdin = unwrapSecrets(raw.stdin) as string;
        assert.ok(stdin.includes(`printf '%s' '[secret stepCaPassword]' > "$phoenix_secrets/CA_PASSWORD"`));
        assert.ok(stdin.includes(`export CA_PROVISIONER_PASSWORD_FILE="$phoenix_secrets/CA_PROVISIONER_PASSWORD"`));
        assert.ok(stdin.includes(fs.readFileSync(path.join(ROOT, "features/lib/common.sh"), "utf8") + "\n" + fs.readFileSync(path.join(ROOT, "features/step_ca.sh"), "utf8").trimEnd()));
        assert.match(raw.create, /^pct exec 103 -- env PHOENIX_GUEST_ID='103' PHOENIX_HOSTNAME='Step-CA' CA_NAME='ThinkHeads Internal CA' CA_DNS_NAMES='ca.internal.thinkheads.ai,internal.thinkheads.ai,\*.internal.thinkheads.ai,127.0.0.1,10.0.0.10' CA_ADDRESS=':9000' CA_PROVISIONER='admin@thinkheads.ai' bash -s$/);
    });

    it("gives every command an update that re-runs nothing, but step_ca's, which prints the CA root again (run against a stub step)", () => {
        for (const r of rec.registrations.filter((x) => x.type === CMD && x.name !== "103-feature-step_ca")) assert.equal(r.inputs.update, NOTHING_TO_RERUN, r.name);
        const update = inputs(rec, "103-feature-step_ca").update as string;
        assert.equal(update, `pct exec 103 -- bash -c ${shq(caRootPrintCommand())}`);
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-ca-"));
        fs.mkdirSync(path.join(tmp, "bin"));
        fs.writeFileSync(path.join(tmp, "bin", "step"), `#!/bin/sh\n[ "$1 $2" = "certificate fingerprint" ] && [ -f "$3" ] && echo ${MOCK_CA_FINGERPRINT.toUpperCase()}\n`, { mode: 0o755 });
        const crt = path.join(tmp, "root_ca.crt");
        fs.writeFileSync(crt, MOCK_CA_PEM); // no trailing newline: the print adds one
        const out = execFileSync("bash", ["-c", caRootPrintCommand(tmp).split(`${tmp}/certs/root_ca.crt`).join(crt)], { env: { ...process.env, PATH: `${tmp}/bin:${process.env.PATH}` } }).toString();
        assert.deepEqual(parseCaOutput(out.replace(/\n$/, ""), 103), { rootPem: `${MOCK_CA_PEM}\n`, fingerprint: MOCK_CA_FINGERPRINT });
    });

    it("never puts a secret in a plain input of any resource", () => {
        for (const r of rec.registrations) {
            for (const s of plainStrings(r.inputs)) assert.ok(!s.includes("[secret "), `${r.name} has a secret in a plain input: ${s.slice(0, 80)}`);
        }
        const provider = find(rec, "proxmoxve", "pulumi:providers:proxmoxve");
        assert.ok(isSecretValue(provider.inputs.password));
        assert.equal(provider.inputs.username, "root@pam");
        assert.equal(provider.inputs.apiToken, undefined);
    });

    it("writes raw lxc lines idempotently into the main section, then starts and waits for the network", () => {
        assert.equal(inputs(rec, "101-lxc-conf").create, rawConfigScript(101, ["lxc.apparmor.profile: unconfined", "lxc.mount.auto: sys:rw"]));
        assert.equal(inputs(rec, "101-start").create, startScript(101, 120));
        assert.match(startScript(101, 120), /no IPv4 address and default route after 120s/);
        assert.equal(inputs(rec, "900-template").create, templateScript(900));
        assert.match(templateScript(900), /grep -q '\^template: 1'.*already a template/);
    });

    it("reconciles the raw config lines on every container: the script (and so its lines) is the trigger, nothing to delete", () => {
        const conf = find(rec, "101-lxc-conf");
        const lines = ["lxc.apparmor.profile: unconfined", "lxc.mount.auto: sys:rw"];
        assert.equal(conf.inputs.create, rawConfigScript(101, lines));
        assert.deepEqual(conf.inputs.triggers, [sha256(rawConfigScript(101, lines), "")]);
        // Nothing to delete now; delete before replace for a state whose old delete removes the lines.
        assert.deepEqual([conf.deleteBeforeReplace, conf.inputs.delete], [true, undefined]);
        assert.equal(inputs(rec, "103-lxc-conf").create, rawConfigScript(103, ["lxc.apparmor.profile: unconfined"]));
    });

    it("sets the config's raw lines to exactly the catalog's, in its main section, idempotently, under Proxmox's config lock (run against a fake /etc/pve)", () => {
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-pve-"));
        fs.mkdirSync(path.join(tmp, "bin"));
        fs.writeFileSync(path.join(tmp, "bin", "pct"), `#!/bin/sh\necho "pct $*" >> "${tmp}/pct.log"\n[ "$1" = status ] && echo "status: \${STATUS:-stopped}"\nexit 0\n`, { mode: 0o755 });
        const conf = path.join(tmp, "101.conf");
        // As a clone of 900 starts: the source's raw lines (and an id map, the provider's) copied by pct clone.
        const snapshot = "\n[pre-configured]\narch: amd64\nlxc.apparmor.profile: generated\n";
        fs.writeFileSync(conf, `#Nginx gateway\narch: amd64\nhostname: Nginx-Phoenix\nlxc.apparmor.profile: generated\nlxc.cgroup2.devices.allow: c 10:200 rwm\nlxc.idmap: u 0 100000 65536\n${snapshot}`);
        const run = (script: string, env: Record<string, string> = {}) =>
            execFileSync("bash", ["-c", script.split("/etc/pve/lxc/101.conf").join(conf).split("/run/lock/lxc").join(tmp)], {
                env: { ...process.env, PATH: `${tmp}/bin:${process.env.PATH}`, ...env },
            }).toString();
        const lines = ["lxc.apparmor.profile: unconfined", "lxc.mount.auto: sys:rw"];
        assert.equal(run(rawConfigScript(101, lines)), "101: raw config set to the catalog's 2 line(s)\n");
        const expected = `#Nginx gateway\narch: amd64\nhostname: Nginx-Phoenix\nlxc.idmap: u 0 100000 65536\nlxc.apparmor.profile: unconfined\nlxc.mount.auto: sys:rw\n${snapshot}`;
        assert.equal(fs.readFileSync(conf, "utf8"), expected, "inherited lines gone, the catalog's after the keys, the snapshot section untouched");
        assert.equal(run(rawConfigScript(101, lines), { STATUS: "running" }), "101: raw config already as the catalog says (2 line(s))\n");
        assert.equal(fs.readFileSync(conf, "utf8"), expected, "a second run changes nothing");
        assert.ok(!fs.existsSync(path.join(tmp, "pct.log")) || !fs.readFileSync(path.join(tmp, "pct.log"), "utf8").includes("reboot"), "nothing changed, no reboot");
        assert.match(run(rawConfigScript(101, ["lxc.mount.auto: sys:rw"]), { STATUS: "running" }), /101: raw config set to the catalog's 1 line\(s\)\n101: rebooted to apply the raw config\n$/);
        assert.match(fs.readFileSync(path.join(tmp, "pct.log"), "utf8"), /pct reboot 101/);
        run(rawConfigScript(101, []));
        assert.equal(fs.readFileSync(conf, "utf8"), `#Nginx gateway\narch: amd64\nhostname: Nginx-Phoenix\nlxc.idmap: u 0 100000 65536\n${snapshot}`, "no lines: none left");
        fs.writeFileSync(conf, "arch: amd64\nlxc.apparmor.profile: generated\n");
        run(rawConfigScript(101, lines));
        assert.equal(fs.readFileSync(conf, "utf8"), "arch: amd64\nlxc.apparmor.profile: unconfined\nlxc.mount.auto: sys:rw\n", "without a snapshot section");
    });

    it("converts a template with servers after stopping and disabling them, starting it first when a retry finds it stopped", () => {
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-pct-"));
        fs.writeFileSync(path.join(tmp, "pct"), `#!/bin/sh\necho "pct $*" >> "${tmp}/pct.log"\n[ "$1" = status ] && echo "status: \${STATUS}"\n[ "$1" = config ] && [ -n "$TEMPLATE" ] && echo "template: 1"\nexit 0\n`, { mode: 0o755 });
        const run = (env: Record<string, string>) => {
            fs.rmSync(path.join(tmp, "pct.log"), { force: true });
            const out = execFileSync("bash", ["-c", templateScript(911, 4, ["vllm.service", "ollama.service"])], { env: { ...process.env, PATH: `${tmp}:${process.env.PATH}`, ...env } }).toString();
            return { out, calls: fs.readFileSync(path.join(tmp, "pct.log"), "utf8").trim().split("\n") };
        };
        const running = run({ STATUS: "running" });
        assert.deepEqual(running.calls, [
            "pct config 911", "pct status 911", "pct exec 911 -- systemctl disable --now vllm.service ollama.service",
            "pct shutdown 911 --timeout 120", "pct set 911 --delete dev0,dev1,dev2,dev3", "pct template 911",
        ]);
        assert.match(running.out, /911: stopped and disabled vllm\.service, ollama\.service: a clone starts its own server through its own feature/);
        assert.deepEqual(run({ STATUS: "stopped" }).calls.slice(1, 4), ["pct status 911", "pct start 911", "pct exec 911 -- systemctl disable --now vllm.service ollama.service"]);
        assert.deepEqual(run({ STATUS: "stopped", TEMPLATE: "1" }).calls, ["pct config 911"], "already a template: nothing else");
        assert.ok(!templateScript(900).includes("systemctl"), "no servers, nothing to disable");
    });

    it("writes raw lines as Proxmox writes them back: any key (hyphens too) as `key: value`, lxc.environment.runtime before the other lxc.* lines", async () => {
        // pve-container src/PVE/LXC/Config.pm: parse_pct_config reads /^(lxc\.[a-z0-9_\-\.]+)(:|\s*=)\s*(.*?)\s*$/,
        // write_pct_config writes the sorted keys, then every lxc.environment.runtime, then the other lxc.* lines in
        // order, each as "$k: $v". A line in another form or order would be rewritten by the next run (and reboot the guest).
        const raw = ["lxc.hook.pre-start = /usr/local/bin/check", "lxc.environment.runtime=TZ=UTC", "lxc.mount.auto: sys:rw"];
        const lines = rawConfigLines({ ...devSpec<LxcSpec>(101), apparmorProfile: undefined, rawLxc: raw });
        assert.deepEqual(lines, ["lxc.hook.pre-start: /usr/local/bin/check", "lxc.environment.runtime: TZ=UTC", "lxc.mount.auto: sys:rw"]);
        const dir = catalogCopy({ "101-nginx-phoenix.yaml": (t) => t.replace('  - "lxc.mount.auto: sys:rw"', '  - "lxc.mount.auto: sys:rw"\n  - "lxc.hook.pre-start = /usr/local/bin/check"') });
        const edited = await recordDev({ "phoenix:catalog": dir, "phoenix:guests": [101] });
        assert.equal(edited.error, undefined, edited.error?.message);
        assert.equal(inputs(edited, "101-lxc-conf").create, rawConfigScript(101, ["lxc.apparmor.profile: unconfined", "lxc.mount.auto: sys:rw", "lxc.hook.pre-start: /usr/local/bin/check"]));

        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-pve-"));
        fs.mkdirSync(path.join(tmp, "bin"));
        fs.writeFileSync(path.join(tmp, "bin", "pct"), "#!/bin/sh\n[ \"$1\" = status ] && echo 'status: stopped'\nexit 0\n", { mode: 0o755 });
        const conf = path.join(tmp, "101.conf");
        const run = (script: string) => execFileSync("bash", ["-c", script.split("/etc/pve/lxc/101.conf").join(conf).split("/run/lock/lxc").join(tmp)], {
            env: { ...process.env, PATH: `${tmp}/bin:${process.env.PATH}` },
        }).toString();
        fs.writeFileSync(conf, "arch: amd64\nhostname: web\nlxc.idmap: u 0 100000 65536\nlxc.idmap: g 0 100000 65536\n");
        assert.equal(run(rawConfigScript(101, lines)), "101: raw config set to the catalog's 3 line(s)\n");
        const written = "arch: amd64\nhostname: web\nlxc.environment.runtime: TZ=UTC\nlxc.idmap: u 0 100000 65536\nlxc.idmap: g 0 100000 65536\nlxc.hook.pre-start: /usr/local/bin/check\nlxc.mount.auto: sys:rw\n";
        assert.equal(fs.readFileSync(conf, "utf8"), written);
        // Proxmox's own rewrite of that file (write_pct_config's order) changes nothing, so the next run has nothing to do.
        const pveRewrite = (text: string): string => {
            const entries = text.split("\n").filter((l) => l !== "").map((l) => /^(lxc\.[a-z0-9_.-]+)(?::|\s*=)\s*(.*?)\s*$/.exec(l) ?? /^([a-z][a-z_]*\d*):\s*(.+?)\s*$/.exec(l)!);
            const keys = entries.filter((m) => !m[1].startsWith("lxc.")).sort((a, b) => (a[1] < b[1] ? -1 : 1));
            const env = entries.filter((m) => m[1] === "lxc.environment.runtime");
            const lxc = entries.filter((m) => m[1].startsWith("lxc.") && m[1] !== "lxc.environment.runtime");
            return [...keys, ...env, ...lxc].map((m) => `${m[1]}: ${m[2]}\n`).join("");
        };
        assert.equal(pveRewrite(written), written);
        assert.equal(run(rawConfigScript(101, lines)), "101: raw config already as the catalog says (3 line(s))\n");
        assert.equal(fs.readFileSync(conf, "utf8"), written, "a second run changes nothing");
    });

    it("delegates host ids mapped outside root's range to root in /etc/subgid before the container exists", () => {
        assert.equal(inputs(rec, "101-subids").create, [
            "set -eu",
            "if grep -qxF 'root:33:1' /etc/subgid; then echo '/etc/subgid already has root:33:1'; else echo 'root:33:1' >> /etc/subgid; echo '/etc/subgid: added root:33:1'; fi",
        ].join("\n"));
        assert.equal(subIdScript(spec(102)), undefined, "the default map needs nothing");
    });

    it("clears the firewall rules a clone inherits from its source before applying its own", () => {
        assert.equal(inputs(rec, "103-fw-reset").create,
            "if [ -f /etc/pve/firewall/103.fw ]; then rm -f /etc/pve/firewall/103.fw; echo '103: cleared the firewall rules inherited from the clone source'; fi");
        assert.equal(find(rec, "103-fw-rules").deleteBeforeReplace, true, "the provider deletes rules by recorded position: delete first");
        assert.equal(find(rec, "103-fw-options").deleteBeforeReplace, true);
        assert.ok(!rec.registrations.some((r) => r.name === "900-fw-reset"), "a guest created from an OS template inherits nothing");
    });

    it("protects only the stateful guest's machine, so its steps can still re-run", () => {
        assert.equal(find(rec, "103-ct").protect, true);
        for (const step of ["103-feature-step_ca", "103-fw-rules", "103-health"]) assert.equal(find(rec, step).protect, false, step);
        assert.equal(find(rec, "103", "phoenix:index:LxcGuest").protect, false);
    });

    it("creates bind-mount host directories owned by the container's shifted uid/gid", () => {
        assert.equal(inputs(rec, "101-host-dirs").create, [
            "set -eu",
            "install -d -m 0750 -o 100033 -g 33 '/mnt/pve/quickOS/lxc-persistent-data/101/logs'",
            "install -d -m 0750 -o 100000 -g 100000 '/mnt/pve/quickOS/lxc-persistent-data/101/ssl'",
        ].join("\n"));
        assert.equal(find(rec, "101-host-dirs").inputs.delete, undefined, "host data is never deleted with the container");
        assert.equal(hostId(spec(102), "uid", 0), 100000);
    });

    it("maps a privileged container's ids one to one and rejects an id outside its maps", () => {
        const s = { ...spec(101), unprivileged: false };
        assert.equal(hostId(s, "gid", 33), 33);
        assert.throws(() => hostId({ ...spec(101), idMaps: [{ type: "gid", containerId: 0, hostId: 100000, size: 10 }] }, "gid", 33), /gid 33 is not covered by its idMaps/);
    });

    it("maps a DHCP container and a fresh container without clone", () => {
        const s = { ...spec(900), network: { ...spec(900).network, ip: "dhcp", gateway: undefined } };
        const args = containerArgs(s, "local:vztmpl/x.tar.zst") as any;
        assert.deepEqual(args.initialization.ipConfigs, [{ ipv4: { address: "dhcp" } }]);
        assert.deepEqual(args.operatingSystem, { templateFileId: "local:vztmpl/x.tar.zst", type: "ubuntu" });
        assert.equal(args.clone, undefined);
    });

    it("states a privileged container's reason in its description, where Proxmox users and the policy pack see it", () => {
        const args = containerArgs({ ...spec(101), unprivileged: false, privilegedReason: "needs raw sockets" }, undefined, { vmId: 900, node: "pve" }) as any;
        assert.equal(args.description, "Nginx gateway in front of Traefik\nPrivileged because: needs raw sockets");
        assert.equal(args.unprivileged, false);
        assert.equal((containerArgs(spec(101), undefined, { vmId: 900, node: "pve" }) as any).description, "Nginx gateway in front of Traefik");
    });
});
