// Catalog shapes other than the reference: a declared dependency gates the first step of the guest that can observe
// it (the application or health check, else the first feature, else the start), readiness always comes after it,
// and nothing earlier waits. Each shape is a small catalog: D, a bare container, is the dependency; S the guest of the
// shape; P, a bare container depending on S, probes S's readiness (P's start waits for exactly S's ready resources).
import { strict as assert } from "assert";
import type { Recording } from "../plan/engine";
import { makePlan } from "../plan/plan";
import { assertDependenciesOrder } from "../plan/recorded";
import { catalogOf, depNames, find, inputs, recordDev } from "./helpers";

const lxc = (id: number, extra: Record<string, unknown> = {}) => ({
    kind: "lxc",
    id,
    name: `ct-${id}`,
    cores: 1,
    memoryMb: 512,
    diskGb: 8,
    network: { ip: "dhcp" },
    ...extra,
});
const vm = (id: number, extra: Record<string, unknown> = {}) => ({
    kind: "vm",
    id,
    name: `vm-${id}`,
    cores: 1,
    memoryMb: 1024,
    diskGb: 16,
    network: { ip: "dhcp" },
    ...extra,
});
/** The bare dependency and a bare probe depending on `on`. */
const D = lxc(500);
const probe = (on: number, id = 600) => lxc(id, { dependsOn: [on] });

const record = async (guests: Record<string, unknown>[]): Promise<Recording> => {
    const rec = await recordDev({ "phoenix:catalog": catalogOf(guests), "phoenix:selectAll": true });
    assert.equal(rec.error, undefined, rec.error?.message);
    return rec;
};

/** S's ready resources, as its dependents see them: what the probe's start waits for besides its own resources. */
const readyOf = (rec: Recording, probeId = 600): string[] => depNames(rec, `${probeId}-start`).filter((n) => !n.startsWith(`${probeId}-`));

/** Guests of the recording that wait for nothing of D's (the resources created before the gate). */
const waitsForD = (rec: Recording, name: string): boolean => depNames(rec, name).some((n) => n.startsWith("500-"));

describe("catalog shapes: a dependency always gates the first step that can observe it", () => {
    describe("bare guests (no features, application or health check): the start", () => {
        let rec: Recording;
        before(async () => (rec = await record([D, lxc(510, { dependsOn: [500] }), probe(510)])));

        it("gates the start on the dependency's readiness; creating the container waits for nothing", () => {
            assert.deepEqual(depNames(rec, "510-start"), ["500-start", "510-ct", "510-fw-options", "510-lxc-conf"]);
            assert.deepEqual(depNames(rec, "510-ct"), []);
            assert.deepEqual(depNames(rec, "510-fw-options"), ["510-ct"]);
        });

        it("is ready after its start", () => assert.deepEqual(readyOf(rec), ["510-start"]));
    });

    describe("features only: the first feature", () => {
        let rec: Recording;
        before(async () => (rec = await record([D, lxc(510, { dependsOn: [500], features: ["base_setup", "step_cli"] }), probe(510)])));

        it("gates the first feature; the start and the container do not wait", () => {
            assert.deepEqual(depNames(rec, "510-feature-base_setup"), ["500-start", "510-ct", "510-start"]);
            assert.deepEqual(depNames(rec, "510-feature-step_cli"), ["510-ct", "510-feature-base_setup"]);
            for (const early of ["510-ct", "510-fw-options", "510-start"]) assert.ok(!waitsForD(rec, early), early);
        });

        it("is ready after its last feature", () => assert.deepEqual(readyOf(rec), ["510-feature-step_cli"]));
    });

    describe("an application without a health check: the application", () => {
        let rec: Recording;
        before(async () =>
            (rec = await record([
                D,
                lxc(510, { dependsOn: [500], features: ["base_setup"], application: { script: "ca_service" } }),
                lxc(520, { dependsOn: [500], application: { script: "ca_service" } }),
                probe(510),
                probe(520, 620),
            ])));

        it("gates the application; the features before it run in parallel with the dependency", () => {
            assert.deepEqual(depNames(rec, "510-app"), ["500-start", "510-ct", "510-feature-base_setup"]);
            assert.deepEqual(depNames(rec, "510-feature-base_setup"), ["510-ct", "510-start"]);
            assert.deepEqual(depNames(rec, "520-app"), ["500-start", "520-ct", "520-start"], "without features: the application right after the start");
            assert.deepEqual(depNames(rec, "520-start"), ["520-ct", "520-fw-options", "520-lxc-conf"]);
        });

        it("is ready after its application", () => {
            assert.deepEqual(readyOf(rec), ["510-app"]);
            assert.deepEqual(readyOf(rec, 620), ["520-app"]);
        });
    });

    describe("lifecycle snapshots without an application", () => {
        let rec: Recording;
        before(async () =>
            (rec = await record([
                D,
                lxc(510, { dependsOn: [500], features: ["base_setup"], lifecycleSnapshots: true }),
                lxc(520, { dependsOn: [500], lifecycleSnapshots: true }),
                probe(510),
                probe(520, 620),
            ])));

        it("gates the first feature: pre-configured is taken before it, final-form only after it", () => {
            assert.deepEqual(depNames(rec, "510-snap-pre-configured"), ["510-ct", "510-start"]);
            assert.deepEqual(depNames(rec, "510-feature-base_setup"), ["500-start", "510-ct", "510-snap-pre-configured"]);
            assert.deepEqual(depNames(rec, "510-snap-final-form"), ["510-ct", "510-feature-base_setup", "510-snap-pre-configured"]);
        });

        it("without features, gates the start: both snapshots come after the dependency", () => {
            assert.deepEqual(depNames(rec, "520-start"), ["500-start", "520-ct", "520-fw-options", "520-lxc-conf"]);
            assert.deepEqual(depNames(rec, "520-snap-pre-configured"), ["520-ct", "520-start"]);
            assert.deepEqual(depNames(rec, "520-snap-final-form"), ["520-ct", "520-snap-pre-configured"]);
        });

        it("is ready after final-form", () => {
            assert.deepEqual(readyOf(rec), ["510-snap-final-form"]);
            assert.deepEqual(readyOf(rec, 620), ["520-snap-final-form"]);
        });
    });

    describe("a container template with dependencies: converted, and so cloned, only after them", () => {
        let rec: Recording;
        before(async () =>
            (rec = await record([
                D,
                lxc(510, { template: true, dependsOn: [500], features: ["base_setup"] }),
                lxc(520, { template: true, dependsOn: [500] }),
                lxc(530, { cloneFrom: 510 }),
                lxc(540, { cloneFrom: 520 }),
                probe(510),
                probe(520, 620),
            ])));

        it("gates the first feature (or, without features, the start); the conversion follows it", () => {
            assert.deepEqual(depNames(rec, "510-feature-base_setup"), ["500-start", "510-ct", "510-start"]);
            assert.deepEqual(depNames(rec, "510-template"), ["510-ct", "510-feature-base_setup"]);
            assert.deepEqual(depNames(rec, "520-start"), ["500-start", "520-ct", "520-fw-options", "520-lxc-conf"]);
            assert.deepEqual(depNames(rec, "520-template"), ["520-ct", "520-start"]);
        });

        it("is ready after the conversion, and its clones take its ID only then", () => {
            assert.deepEqual(readyOf(rec), ["510-template"]);
            assert.deepEqual(readyOf(rec, 620), ["520-template"]);
            // A dependsOn on the conversion, not an input: rebuilding the template must not condemn its clones.
            assert.deepEqual(find(rec, "530-ct").propertyDependencies.clone ?? [], []);
            assert.deepEqual(depNames(rec, "530-ct"), ["510-template"]);
            assert.deepEqual(depNames(rec, "540-ct"), ["520-template"]);
        });
    });

    describe("osTemplate.url: the download gates the creation", () => {
        let rec: Recording;
        const os = { file: "debian-12-standard_12.7-1_amd64.tar.zst", url: "https://download.example/debian-12-standard_12.7-1_amd64.tar.zst" };
        before(async () => (rec = await record([D, lxc(510, { dependsOn: [500], osTemplate: os }), probe(510)])));

        it("creates the container from the downloaded file (its ID flows into operatingSystem); the start waits for the dependency", () => {
            assert.deepEqual(depNames(rec, "510-os-template"), []);
            assert.deepEqual(depNames(rec, "510-ct"), ["510-os-template"]);
            // The file's ID as a value, the download as a dependsOn: a new download must not condemn the container.
            assert.deepEqual(find(rec, "510-ct").propertyDependencies.operatingSystem ?? [], []);
            assert.equal(inputs(rec, "510-ct").operatingSystem.templateFileId, `fastData-shared-iso:vztmpl/${os.file}`, "the download's volume ID");
            assert.deepEqual(depNames(rec, "510-start"), ["500-start", "510-ct", "510-fw-options", "510-lxc-conf"]);
        });

        it("downloads to the template storage under the catalog's file name, and the dependency-free guest uses the stored file", () => {
            const dl = inputs(rec, "510-os-template");
            assert.deepEqual([dl.contentType, dl.datastoreId, dl.fileName, dl.url], ["vztmpl", "fastData-shared-iso", os.file, os.url]);
            assert.equal(inputs(rec, "500-ct").operatingSystem.templateFileId, "fastData-shared-iso:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst");
        });

        it("is ready after its start", () => assert.deepEqual(readyOf(rec), ["510-start"]));
    });

    describe("VMs: a feature with after:, a bare VM, a VM template with dependencies", () => {
        let rec: Recording;
        const A = lxc(501);
        before(async () =>
            (rec = await record([
                D,
                A,
                vm(9100, { template: true }),
                vm(9110, { template: true, dependsOn: [500] }),
                vm(910, { cloneFrom: 9100, dependsOn: [500], network: { ip: "10.9.0.10/24" }, features: ["base_setup", { name: "step_cli", after: [501] }] }),
                vm(920, { cloneFrom: 9110, dependsOn: [500] }),
                probe(910),
                probe(920, 620),
            ])));

        it("gates the first feature on dependsOn and the feature with after: on that guest only", () => {
            assert.deepEqual(depNames(rec, "910-feature-base_setup"), ["500-start", "910-fw-options", "910-fw-rules", "910-vm", "910-wait"]);
            assert.deepEqual(depNames(rec, "910-feature-step_cli"), ["501-start", "910-feature-base_setup", "910-vm"]);
            for (const early of ["910-vm", "910-wait", "910-fw-options"]) assert.ok(!waitsForD(rec, early), early);
            assert.deepEqual(readyOf(rec), ["910-feature-step_cli"]);
        });

        it("a VM without in-guest steps is gated at its creation, which starts it", () => {
            assert.deepEqual(depNames(rec, "920-vm"), ["500-start", "9110-vendor-data", "9110-vm"]);
            assert.deepEqual(readyOf(rec, 620), ["920-fw-options", "920-wait"]);
        });

        it("a VM template with dependencies is created (as a template) only after them, so its clones too", () => {
            // Both templates import the same cloud image on the same node and datastore: one download serves both.
            assert.deepEqual(depNames(rec, "9110-vm"), ["500-start", "9100-image", "9110-vendor-data"]);
            assert.deepEqual(depNames(rec, "9100-vm"), ["9100-image", "9100-vendor-data"]);
            assert.deepEqual(find(rec, "920-vm").propertyDependencies.clone ?? [], [], "a dependsOn on the template, not an input");
        });
    });

    describe("the plan of a catalog of bare guests", () => {
        it("shows every declared dependency as an edge and orders the waves by it (no single wave)", async () => {
            const plan = await makePlan({ catalog: catalogOf([D, lxc(510, { dependsOn: [500] }), lxc(520, { dependsOn: [510] })]), guests: "all", scale: 0 });
            assert.deepEqual(plan.recorded.waves, [[500], [510], [520]]);
            assert.deepEqual(plan.recorded.reduced.map((e) => `${e.from}->${e.to} ${e.kinds.join(",")}`), ["510->500 ready", "520->510 ready"]);
            assert.deepEqual(plan.recorded.guests.find((g) => g.id === 520)!.waitsFor, [510]);
            const start = plan.recorded.guests.find((g) => g.id === 520)!.steps.find((s) => s.role === "start")!;
            assert.deepEqual(start.waits.map((w) => `${w.kind} ${w.guest} ${w.via.join()}`), ["ready 510 510-start"]);
        });
    });
});

describe("the plan's guard: a declared dependency that orders nothing", () => {
    it("is an error naming the guest and the dependency, never a plan to show", () => {
        assert.throws(() => assertDependenciesOrder([], new Map([[510, [500]]])), /declared dependencies that order nothing \(.*\): 510 -> 500$/);
        assert.throws(() => assertDependenciesOrder([{ from: 510, to: 500, kinds: ["ca"] }], new Map([[510, [500]]])), /510 -> 500/, "taking an output is not readiness");
        assert.doesNotThrow(() => assertDependenciesOrder([{ from: 510, to: 500, kinds: ["ready"] }], new Map([[510, [500]]])));
        assert.doesNotThrow(() => assertDependenciesOrder([{ from: 920, to: 9110, kinds: ["clone"] }], new Map([[920, [9110]]])), "a VM gated at its creation on its own clone source");
    });
});
