// The policy pack, rule by rule, on the recorded dev stack (the seed) and on deliberately bad copies of it; then the
// pack itself, started the way the Pulumi CLI starts it and asked through the analyzer protocol.
import { strict as assert } from "assert";
import { spawn, type ChildProcess } from "child_process";
import * as path from "path";
import type { Registration } from "../plan/engine";
import { unwrapSecrets } from "../plan/engine";
import { policies } from "../policy/policies";
import * as rules from "../policy/rules";
import { ROOT, recordDev } from "./helpers";

const toSubject = (r: Registration): rules.Subject => ({
    type: r.type,
    name: r.name,
    urn: r.urn,
    props: unwrapSecrets(r.inputs),
    protect: r.protect,
    deleteBeforeReplace: r.deleteBeforeReplace,
    parent: r.parent || undefined,
});

type ResourceRule = (r: rules.Subject) => string[];

const byResource = (rule: ResourceRule, all: readonly rules.Subject[]): rules.Violation[] =>
    all.flatMap((r) => rule(r).map((message) => ({ urn: r.urn, message })));

/** A deep copy of the subjects with one resource changed (or removed when the edit returns null). */
const variant = (all: readonly rules.Subject[], name: string, edit: (r: rules.Subject) => rules.Subject | null): rules.Subject[] => {
    assert.ok(all.some((r) => r.name === name), `no recorded resource ${name}`);
    return all.flatMap((r) => {
        if (r.name !== name) return [r];
        const changed = edit(structuredClone(r));
        return changed ? [changed] : [];
    });
};

const nameOf = (all: readonly rules.Subject[], urn: string): string => all.find((r) => r.urn === urn)?.name ?? urn;

describe("policy pack rules", () => {
    let seed: rules.Subject[];
    before(async () => {
        const rec = await recordDev();
        assert.equal(rec.error, undefined);
        seed = rec.registrations.map(toSubject);
    });

    it("the seed passes every mandatory rule", () => {
        const mandatory: [string, rules.Violation[]][] = [
            ["firewallDefaultDeny", byResource(rules.firewallDefaultDeny, seed)],
            ["containerUnprivileged", byResource(rules.containerUnprivileged, seed)],
            ["fixedVmId", byResource(rules.fixedVmId, seed)],
            ["vmGuestAgent", byResource(rules.vmGuestAgent, seed)],
            ["deleteBeforeReplace", byResource(rules.deleteBeforeReplace, seed)],
            ["firewallPresent", rules.firewallPresent(seed)],
            ["uniqueVmIds", rules.uniqueVmIds(seed)],
            ["statefulProtected", rules.statefulProtected(seed)],
        ];
        for (const [rule, found] of mandatory) assert.deepEqual(found.map((v) => v.message), [], `${rule} on the seed`);
        // The rules did look at the guests: seven machines and their firewalls are in the recording.
        const machines = seed.filter((r) => r.type === rules.TYPES.container || r.type === rules.TYPES.vm);
        assert.equal(machines.length, 7);
        const vmTemplates = machines.filter((r) => r.type === rules.TYPES.vm && r.props.template === true);
        assert.equal(seed.filter((r) => r.type === rules.TYPES.firewallOptions).length, machines.length - vmTemplates.length);
    });

    describe("guest firewall enabled with default-deny input", () => {
        it("fails a disabled firewall and an ACCEPT input policy", () => {
            const off = byResource(rules.firewallDefaultDeny, variant(seed, "102-fw-options", (r) => ({ ...r, props: { ...r.props, enabled: false } })));
            assert.equal(off.length, 1);
            assert.match(off[0].message, /^102-fw-options: the guest firewall is disabled, so its rules are inert/);
            const accept = byResource(rules.firewallDefaultDeny, variant(seed, "1001-fw-options", (r) => ({ ...r, props: { ...r.props, inputPolicy: "ACCEPT" } })));
            assert.equal(accept.length, 1);
            assert.match(accept[0].message, /^1001-fw-options: input policy ACCEPT lets every inbound packet through; set firewall.inputPolicy: DROP/);
        });

        it("reads an unset input policy as the provider's default, DROP", () => {
            const unset = variant(seed, "1001-fw-options", (r) => {
                const { inputPolicy: _drop, ...props } = r.props;
                return { ...r, props };
            });
            assert.deepEqual(byResource(rules.firewallDefaultDeny, unset), []);
        });

        it("fails a guest NIC that bypasses the firewall (container and VM)", () => {
            const ct = variant(seed, "101-ct", (r) => {
                r.props.networkInterfaces[0].firewall = false;
                return r;
            });
            assert.deepEqual(byResource(rules.firewallDefaultDeny, ct).map((v) => v.message), [
                "container 101-ct: network interface eth0 has firewall off, so the guest firewall does not filter it",
            ]);
            const vm = variant(seed, "1002-vm", (r) => {
                r.props.networkDevices[0].firewall = false;
                return r;
            });
            assert.deepEqual(byResource(rules.firewallDefaultDeny, vm).map((v) => v.message), [
                "VM 1002-vm: network interface #0 has firewall off, so the guest firewall does not filter it",
            ]);
        });

        it("fails a guest without firewall options (stack rule)", () => {
            const all = variant(seed, "102-fw-options", () => null);
            const found = rules.firewallPresent(all);
            assert.deepEqual(found.map((v) => [nameOf(all, v.urn), v.message]), [["102-ct", "container 102-ct has no firewall options resource, so its guest firewall stays off"]]);
        });

        it("exempts a VM template (it never boots) but not the same VM as a running guest", () => {
            const template = seed.find((r) => r.type === rules.TYPES.vm && r.props.template === true)!;
            assert.ok(!seed.some((r) => r.type === rules.TYPES.firewallOptions && r.parent === template.parent), "the VM template has no firewall options");
            const running = variant(seed, template.name, (r) => ({ ...r, props: { ...r.props, template: false } }));
            assert.deepEqual(rules.firewallPresent(running).map((v) => nameOf(running, v.urn)), [template.name]);
        });
    });

    describe("containers unprivileged unless the catalog says why", () => {
        it("fails a privileged container without a reason", () => {
            const all = variant(seed, "102-ct", (r) => ({ ...r, props: { ...r.props, unprivileged: false } }));
            const found = byResource(rules.containerUnprivileged, all);
            assert.equal(found.length, 1);
            assert.match(found[0].message, /^container 102-ct is privileged \(unprivileged: false\) with no reason: .*set privilegedReason/);
        });

        it("treats a container that leaves unprivileged unset as privileged (the provider's default)", () => {
            const all = variant(seed, "102-ct", (r) => {
                const { unprivileged: _u, ...props } = r.props;
                return { ...r, props };
            });
            const found = byResource(rules.containerUnprivileged, all);
            assert.equal(found.length, 1);
            assert.match(found[0].message, /^container 102-ct is privileged/);
        });

        it("passes a privileged container whose description carries the reason", () => {
            const all = variant(seed, "102-ct", (r) => ({
                ...r,
                props: { ...r.props, unprivileged: false, description: `${r.props.description}\nPrivileged because: needs raw access to /dev/net/tun` },
            }));
            assert.deepEqual(byResource(rules.containerUnprivileged, all), []);
        });
    });

    describe("nesting/keyctl/fuse only when a feature needs them (advisory)", () => {
        it("flags 101's nesting in the seed: none of its features needs it", () => {
            const found = rules.containerFlagsJustified(seed);
            assert.deepEqual(found.map((v) => nameOf(seed, v.urn)), ["101-ct"]);
            assert.match(found[0].message, /^container 101-ct: nesting is on, but none of its features \(base_setup, trusted_ca, step_cli\) needs it \(needed by: docker\)/);
        });

        it("fails keyctl without docker, passes nesting and keyctl once the container runs the docker feature", () => {
            const flagged = variant(seed, "103-ct", (r) => ({ ...r, props: { ...r.props, features: { nesting: true, keyctl: true, fuse: false } } }));
            const found = rules.containerFlagsJustified(flagged).filter((v) => nameOf(flagged, v.urn) === "103-ct");
            assert.deepEqual(found.map((v) => v.message.split(":")[1].trim()), ["nesting is on, but none of its features (base_setup, step_ca) needs it (needed by", "keyctl is on, but none of its features (base_setup, step_ca) needs it (needed by"]);
            const ct = flagged.find((r) => r.name === "103-ct")!;
            const withDocker = [...flagged, { ...ct, type: "command:remote:Command", name: "103-feature-docker", urn: `${ct.urn}-docker`, props: {} }];
            assert.deepEqual(rules.containerFlagsJustified(withDocker).filter((v) => nameOf(withDocker, v.urn) === "103-ct"), []);
        });
    });

    describe("fixed, unique VM IDs", () => {
        it("fails a guest without its fixed ID and a provider that picks random IDs", () => {
            const noId = variant(seed, "1001-vm", (r) => {
                delete r.props.vmId;
                return r;
            });
            assert.deepEqual(byResource(rules.fixedVmId, noId).map((v) => v.message), [
                "VM 1001-vm: vmId is unset; every guest needs its fixed catalog ID (100 or more), never a provider-assigned one",
            ]);
            const provider = seed.find((r) => r.type === rules.TYPES.provider)!;
            const random = variant(seed, provider.name, (r) => ({ ...r, props: { ...r.props, randomVmIds: "true" } }));
            assert.equal(byResource(rules.fixedVmId, random).length, 1);
            assert.match(byResource(rules.fixedVmId, random)[0].message, /randomVmIds is on/);
        });

        it("fails two guests with one ID (stack rule), naming both", () => {
            const all = variant(seed, "102-ct", (r) => ({ ...r, props: { ...r.props, vmId: 101 } }));
            assert.deepEqual(rules.uniqueVmIds(all).map((v) => [nameOf(all, v.urn), v.message]), [["102-ct", "container 102-ct uses ID 101, already used by container 101-ct"]]);
        });
    });

    describe("VMs with the guest agent", () => {
        it("fails a VM whose agent is disabled or missing", () => {
            const off = variant(seed, "1002-vm", (r) => ({ ...r, props: { ...r.props, agent: { ...r.props.agent, enabled: false } } }));
            assert.deepEqual(byResource(rules.vmGuestAgent, off).map((v) => v.message), [
                "VM 1002-vm: the QEMU guest agent is not enabled (agent.enabled); the VM's IP address and clean shutdowns depend on it",
            ]);
            const missing = variant(seed, "9000-vm", (r) => {
                delete r.props.agent;
                return r;
            });
            assert.equal(byResource(rules.vmGuestAgent, missing).length, 1);
        });
    });

    describe("deleteBeforeReplace on every guest with a fixed ID", () => {
        it("fails a guest registered without it", () => {
            const all = variant(seed, "101-ct", (r) => ({ ...r, deleteBeforeReplace: false }));
            assert.deepEqual(byResource(rules.deleteBeforeReplace, all).map((v) => v.message), [
                'container 101-ct: fixed ID 101 without deleteBeforeReplace; a replacement would be created first and fail with "101 already exists"',
            ]);
        });
    });

    describe("stateful guests protected", () => {
        it("the seed's CA container is protected (inherited from its component)", () => {
            assert.equal(seed.find((r) => r.name === "103-ct")!.protect, true);
        });

        it("fails the CA container unprotected, and any guest tagged stateful", () => {
            const ca = variant(seed, "103-ct", (r) => ({ ...r, protect: false }));
            assert.deepEqual(rules.statefulProtected(ca).map((v) => [nameOf(ca, v.urn), v.message]), [
                ["103-ct", "container 103-ct holds state (feature step_ca) but is not protected; set protect: true in its catalog file so a destroy or replacement cannot delete it"],
            ]);
            const tagged = variant(seed, "1002-vm", (r) => ({ ...r, protect: false, props: { ...r.props, tags: [...(r.props.tags ?? []), "stateful"] } }));
            assert.deepEqual(rules.statefulProtected(tagged).map((v) => nameOf(tagged, v.urn)), ["1002-vm"]);
            const protectedTagged = variant(tagged, "1002-vm", (r) => ({ ...r, protect: true }));
            assert.deepEqual(rules.statefulProtected(protectedTagged), []);
        });
    });
});

// ---- the pack as the CLI runs it: `pulumi preview --policy-pack policy` starts run-policy-pack in policy/ ----

/* eslint-disable @typescript-eslint/no-require-imports */
const grpc = require("@grpc/grpc-js");
const analyzerGrpc = require("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
const analyzerPb = require("@pulumi/pulumi/proto/analyzer_pb.js");
const { Empty } = require("google-protobuf/google/protobuf/empty_pb.js");
const { Struct } = require("google-protobuf/google/protobuf/struct_pb.js");

const call = <T>(client: any, method: string, req: unknown): Promise<T> =>
    new Promise((resolve, reject) => client[method](req, (err: Error | null, resp: T) => (err ? reject(err) : resolve(resp))));

const analyzerResource = (r: rules.Subject): any => {
    const res = new analyzerPb.AnalyzerResource();
    res.setType(r.type);
    res.setName(r.name);
    res.setUrn(r.urn);
    res.setProperties(Struct.fromJavaScript(JSON.parse(JSON.stringify(r.props))));
    const opts = new analyzerPb.AnalyzerResourceOptions();
    opts.setProtect(r.protect);
    opts.setDeletebeforereplace(r.deleteBeforeReplace);
    opts.setDeletebeforereplacedefined(true);
    res.setOptions(opts);
    if (r.parent) res.setParent(r.parent);
    return res;
};

const diagnostics = (resp: any): { policy: string; level: number; message: string; urn: string }[] =>
    resp.getDiagnosticsList().map((d: any) => ({ policy: d.getPolicyname(), level: d.getEnforcementlevel(), message: d.getMessage(), urn: d.getUrn() }));

describe("policy pack as the Pulumi CLI runs it (analyzer protocol)", function () {
    this.timeout(120000);
    let pack: ChildProcess;
    let client: any;
    let seed: rules.Subject[];

    before(async () => {
        seed = (await recordDev()).registrations.map(toSubject);
        // The CLI starts `@pulumi/pulumi/cmd/run-policy-pack <engine> <pack dir>` with the pack dir as working directory;
        // the pack prints the port of its analyzer server.
        pack = spawn(process.execPath, [require.resolve("@pulumi/pulumi/cmd/run-policy-pack"), "127.0.0.1:1", "."], { cwd: path.join(ROOT, "policy") });
        let stderr = "";
        pack.stderr!.on("data", (d) => (stderr += d));
        const port = await new Promise<string>((resolve, reject) => {
            pack.stdout!.once("data", (d) => resolve(String(d).trim()));
            pack.once("exit", (code) => reject(new Error(`policy pack exited ${code}: ${stderr}`)));
        });
        client = new analyzerGrpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    });

    after(() => {
        client?.close();
        pack?.kill();
    });

    it("declares every rule with its enforcement level", async () => {
        const info: any = await call(client, "getAnalyzerInfo", new Empty());
        const levels = Object.fromEntries(info.getPoliciesList().map((p: any) => [p.getName(), p.getEnforcementlevel()]));
        const { ADVISORY, MANDATORY } = analyzerPb.EnforcementLevel;
        assert.deepEqual(levels, {
            "guest-firewall-default-deny": MANDATORY,
            "guest-firewall-present": MANDATORY,
            "container-unprivileged": MANDATORY,
            "container-flags-justified": ADVISORY,
            "fixed-vm-ids": MANDATORY,
            "unique-vm-ids": MANDATORY,
            "vm-guest-agent": MANDATORY,
            "fixed-id-delete-before-replace": MANDATORY,
            "stateful-guests-protected": MANDATORY,
        });
        assert.equal(policies.length, Object.keys(levels).length);
    });

    it("reports a bad resource through validateResource", async () => {
        const bad = variant(seed, "1001-vm", (r) => ({ ...r, props: { ...r.props, agent: { enabled: false } } })).find((r) => r.name === "1001-vm")!;
        const req = new analyzerPb.AnalyzeRequest();
        req.setType(bad.type);
        req.setName(bad.name);
        req.setUrn(bad.urn);
        req.setProperties(Struct.fromJavaScript(JSON.parse(JSON.stringify(bad.props))));
        const opts = new analyzerPb.AnalyzerResourceOptions();
        opts.setProtect(false);
        opts.setDeletebeforereplace(true);
        opts.setDeletebeforereplacedefined(true);
        req.setOptions(opts);
        const found = diagnostics(await call(client, "analyze", req));
        assert.deepEqual(found.map((d) => d.policy), ["vm-guest-agent"]);
        assert.match(found[0].message, /VM 1001-vm: the QEMU guest agent is not enabled/);
    });

    it("passes the seed stack except the advisory on 101, and fails an unprotected CA", async () => {
        const analyzeStack = async (all: rules.Subject[]) => {
            const req = new analyzerPb.AnalyzeStackRequest();
            req.setResourcesList(all.map(analyzerResource));
            return diagnostics(await call(client, "analyzeStack", req));
        };
        const onSeed = await analyzeStack(seed);
        assert.deepEqual(onSeed.map((d) => [d.policy, d.level, nameOf(seed, d.urn)]), [["container-flags-justified", analyzerPb.EnforcementLevel.ADVISORY, "101-ct"]]);
        const unprotected = variant(seed, "103-ct", (r) => ({ ...r, protect: false }));
        const found = await analyzeStack(unprotected);
        assert.deepEqual(found.filter((d) => d.level === analyzerPb.EnforcementLevel.MANDATORY).map((d) => [d.policy, nameOf(unprotected, d.urn)]), [["stateful-guests-protected", "103-ct"]]);
    });
});
