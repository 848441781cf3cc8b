import { strict as assert } from "assert";
import * as pulumi from "@pulumi/pulumi";
import { transitiveReduction } from "../catalog/graph";
import { type Recording, unwrapSecrets } from "../plan/engine";
import { catalogCopy, find, ownerGuest, recordDev } from "./helpers";

const MACHINES = new Set(["proxmoxve:index/containerLegacy:ContainerLegacy", "proxmoxve:index/vmLegacy:VmLegacy"]);

/**
 * The one wait for a step of another guest rather than its readiness: Traefik's routes wait for the gateway's
 * application, which forwards their ACME challenges (catalog/routes.ts); the gateway's readiness comes after Traefik's.
 */
const ROUTE_STEP_WAIT = "102-app->101-app";

/**
 * Guest-level edges recorded from registrations, each resource mapped to its guest through the parent chain;
 * the route's step wait (a loop at guest level with the gateway's health check) is left out.
 */
const guestEdges = (rec: Recording, { withLanes }: { withLanes: boolean }): { from: number; to: number }[] => {
    const byUrn = new Map(rec.registrations.map((r) => [r.urn, r]));
    const edges = new Map<string, { from: number; to: number }>();
    for (const r of rec.registrations) {
        const from = ownerGuest(rec, r.urn);
        if (from === undefined) continue;
        for (const dep of r.dependencies) {
            const to = ownerGuest(rec, dep);
            if (to === undefined || to === from) continue;
            // A clone lane: one machine waiting for the previous clone's machine (not its clone source's).
            const isLane = MACHINES.has(r.type) && MACHINES.has(byUrn.get(dep)!.type) && to !== Number(r.inputs.clone?.vmId);
            if ((isLane && !withLanes) || `${r.name}->${byUrn.get(dep)!.name}` === ROUTE_STEP_WAIT) continue;
            edges.set(`${from}->${to}`, { from, to });
        }
    }
    return [...edges.values()];
};

const fmt = (es: { from: number; to: number }[]) => es.map((e) => `${e.from}->${e.to}`).sort();

describe("program", () => {
    it("records exactly the seed document's guest graph for the reference selection (transitive reduction, clone lanes aside)", async () => {
        const rec = await recordDev();
        assert.equal(rec.error, undefined);
        // The gateway's health check checks every route through Traefik (102) and Portainer (1001): 101 -> 1001 -> 102.
        assert.deepEqual(fmt(transitiveReduction(guestEdges(rec, { withLanes: false }))), ["1001->102", "1001->9000", "1002->1001", "101->1001", "102->103", "103->900"]);
        // Implied by the reduction: every clone also depends on its source, the gateway on the CA and on Traefik.
        const all = fmt(guestEdges(rec, { withLanes: false }));
        for (const e of ["101->900", "102->900", "1002->9000", "101->103", "101->102"]) assert.ok(all.includes(e), e);
        // Besides, 102's routes wait for 101's application (not its readiness): the one wait for a step of another guest.
        const waits = (name: string) => find(rec, name).dependencies.map((u) => rec.registrations.find((r) => r.urn === u)!.name).filter((n) => !n.startsWith("102-"));
        assert.deepEqual(waits("102-app"), ["103-health", "101-app"]);
    });

    it("serializes clones of one source (clone lanes) and nothing else", async () => {
        const rec = await recordDev();
        const withoutLanes = fmt(guestEdges(rec, { withLanes: false }));
        const laneOnly = fmt(guestEdges(rec, { withLanes: true })).filter((e) => !withoutLanes.includes(e));
        assert.deepEqual(laneOnly, ["102->101"], "only 102 waits for a guest it does not otherwise need: 101's clone of 900");
    });

    it("binds everything on a machine to it: replaced with it (a new machine starts blank), not deleted one by one", async () => {
        const rec = await recordDev();
        for (const comp of rec.registrations.filter((r) => r.type.startsWith("phoenix:index:"))) {
            const children = rec.registrations.filter((r) => r.parent === comp.urn);
            const machine = children.find((c) => MACHINES.has(c.type))!;
            for (const c of children) {
                const before = ["subids", "host-dirs", "os-template", "image", "vendor-data"].some((role) => c.name === `${comp.name}-${role}`);
                if (c === machine || before) {
                    assert.deepEqual([c.replaceWith, c.deletedWith], [[], ""], `${c.name} exists apart from the machine`);
                } else {
                    // A clone's firewall is also replaced with its reset, which clears it.
                    const reset = children.find((x) => x.name === `${comp.name}-fw-reset`);
                    const alsoWith = reset && /-fw-(options|rules)$/.test(c.name) ? [reset.urn] : [];
                    assert.deepEqual([c.replaceWith, c.deletedWith], [[machine.urn, ...alsoWith], machine.urn], `${c.name} is bound to ${machine.name}`);
                }
            }
        }
    });

    it("builds one component per guest, named by its ID, with the explicit provider", async () => {
        const rec = await recordDev();
        const comps = rec.registrations.filter((r) => r.type.startsWith("phoenix:index:"));
        assert.deepEqual(comps.map((c) => `${c.type.split(":")[2]} ${c.name}`).sort(), [
            "LxcGuest 101", "LxcGuest 102", "LxcGuest 103", "LxcGuest 900", "VmGuest 1001", "VmGuest 1002", "VmGuest 9000",
        ]);
        const provider = find(rec, "proxmoxve", "pulumi:providers:proxmoxve");
        assert.ok(find(rec, "101-ct").provider.startsWith(`${provider.urn}::`), "children inherit the explicit provider");
        const ssh = unwrapSecrets(provider.inputs.ssh);
        assert.deepEqual((typeof ssh === "string" ? JSON.parse(ssh) : ssh).nodes, [{ name: "phoenix", address: "10.0.0.13", port: 22 }]);
        assert.equal(provider.inputs.endpoint, "https://10.0.0.13:8006/");
        const out = rec.outputs as any;
        assert.deepEqual(out.guests["103"], { kind: "lxc", dependsOn: [], vmId: 103, ip: "10.0.0.10", node: "phoenix", ready: 103 });
        assert.deepEqual(out.guests["1001"].dependsOn, [102]);
    });

    it("pulls dependencies and clone sources into a smaller selection, saying why", async () => {
        const rec = await recordDev({ "phoenix:guests": [101] });
        const comps = rec.registrations.filter((r) => r.type.startsWith("phoenix:index:")).map((r) => r.name).sort();
        assert.deepEqual(comps, ["101", "103", "900"]);
        assert.deepEqual((rec.outputs as any).selection, {
            requested: [101],
            pulledIn: [{ id: 900, by: 101, reason: "cloneFrom" }, { id: 103, by: 101, reason: "dependsOn" }],
            managed: [900, 103, 101],
        });
    });

    it("manages the whole catalog with selectAll", async () => {
        const rec = await recordDev({ "phoenix:selectAll": true, "phoenix:guests": [] });
        assert.equal(rec.registrations.filter((r) => r.type.startsWith("phoenix:index:")).length, 7);
    });

    it("stops with a RunError listing known guests, before any resource, on an unknown guest ID", async () => {
        const rec = await recordDev({ "phoenix:guests": [101, 4242] });
        assert.ok(rec.error instanceof pulumi.RunError);
        assert.equal(rec.error.message, "phoenix:guests names a guest not in the catalog: 4242. Known guests: 101, 102, 103, 900, 1001, 1002, 9000.");
        assert.equal(rec.registrations.length, 0);
    });

    it("stops with a RunError carrying every catalog problem, before any resource", async () => {
        const dir = catalogCopy({ "101-nginx-phoenix.yaml": (s) => s.replace("cores: 4", "cores: many").replace("memoryMb: 4096", "memory: 4096") });
        const rec = await recordDev({ "phoenix:catalog": dir });
        assert.ok(rec.error instanceof pulumi.RunError, String(rec.error));
        assert.equal(rec.registrations.length, 0, "nothing registered");
        const lines = rec.error.message.split("\n");
        assert.equal(lines[0], "The guest catalog has 3 problems:");
        assert.match(lines[1], /101-nginx-phoenix\.yaml:3:1 memoryMb: required \(expected number\)$/);
        assert.match(lines[2], /101-nginx-phoenix\.yaml:9:8 cores: expected CPU cores, a whole number 1..512, received "many"$/);
        assert.match(lines[3], /101-nginx-phoenix\.yaml:10:1 memory: unknown key; did you mean memoryMb\?$/);
    });

    it("refuses API-token login for guests with bind mounts (Proxmox allows them only for root@pam), before any resource", async () => {
        const rec = await recordDev({ "phoenix:auth": "token" });
        assert.ok(rec.error instanceof pulumi.RunError);
        assert.equal(rec.error.message,
            "guests 103, 101, 102 use bind mounts, device passthrough (GPUs) or container feature flags beyond nesting, which Proxmox allows only for root@pam " +
            "(API tokens are refused, even root's): set phoenix:auth to password with phoenix:username root@pam and the secret phoenix:password");
        assert.equal(rec.registrations.length, 0);
        const vms = await recordDev({ "phoenix:auth": "token", "phoenix:guests": [9000] });
        assert.equal(vms.error, undefined, "VMs need no root@pam");
        const provider = find(vms, "proxmoxve", "pulumi:providers:proxmoxve");
        assert.deepEqual([unwrapSecrets(provider.inputs.apiToken), provider.inputs.username, provider.inputs.password], ["[secret apiToken]", undefined, undefined]);
        const other = await recordDev({ "phoenix:auth": "password", "phoenix:username": "phoenix@pve" });
        assert.match(String(other.error), /guests 103, 101, 102 use bind mounts/);
        // keyctl/fuse need root@pam on any container, privileged or not.
        const keyctl = catalogCopy({ "9000-ubuntu-cloud-template.yaml": (t) => t, "900-copy-base.yaml": (t) => t.replace("apparmorProfile: unconfined", "apparmorProfile: unconfined\npctFeatures: { keyctl: true }") });
        const tokenKeyctl = await recordDev({ "phoenix:auth": "token", "phoenix:guests": [900], "phoenix:catalog": keyctl });
        assert.match(String(tokenKeyctl.error), /guests 900 use bind mounts, device passthrough \(GPUs\) or container feature flags beyond nesting/);
        const bad = await recordDev({ "phoenix:auth": "ticket" });
        assert.equal(bad.error?.message, 'stack config phoenix:auth: expected "token" (phoenix:apiToken) or "password" (phoenix:username, phoenix:password), received "ticket"');
    });

    it("rejects malformed stack config with a RunError naming the key", async () => {
        const rec = await recordDev({ "phoenix:endpoint": "pve.lan:8006/api2/json" });
        assert.ok(rec.error instanceof pulumi.RunError);
        assert.equal(rec.error.message, 'stack config phoenix:endpoint: expected the API URL without path, e.g. https://pve.lan:8006/, received "pve.lan:8006/api2/json"');
        assert.equal(rec.registrations.length, 0);
        const noKeys = await recordDev({ "phoenix:sshPublicKeys": [] });
        assert.match(String(noKeys.error), /stack config phoenix:sshPublicKeys: expected a list of SSH public keys for the VMs' cloud-init user/);
        assert.equal(noKeys.registrations.filter((r) => r.name === "1001-vm").length, 0, "no VM without a key");
        const containersOnly = await recordDev({ "phoenix:sshPublicKeys": [], "phoenix:guests": [101] });
        assert.equal(containersOnly.error, undefined, "containers need no VM keys");
        const bad = await recordDev({ "phoenix:guests": ["web"] });
        assert.equal(bad.error?.message, 'stack config phoenix:guests: expected guest IDs (integers), received "web"');
    });
});
