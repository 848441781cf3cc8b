// The original's own ordering tests (phoenix-tests.md), ported: each test's configuration is a fixture in the
// original's format (test/fixtures/phoenix-ordering), imported with the importer, planned, and checked against the
// order the original expected.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { makePlan, type PlanResult } from "../plan/plan";
import { importPhoenix } from "../tools/phoenix/importer";
import type { ImportResult } from "../tools/phoenix/model";
import { renderCatalog, writeCatalog } from "../tools/phoenix/render";
import { ROOT, depNames, inputs } from "./helpers";

const FIXTURES = path.join(ROOT, "test", "fixtures", "phoenix-ordering");

/** Imports a fixture into a fresh directory and plans every guest in it. */
const importAndPlan = async (fixture: string, guests: number[] | "all" = "all"): Promise<{ imported: ImportResult; plan: PlanResult }> => {
    const imported = importPhoenix(path.join(FIXTURES, fixture));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), `phoenix-${fixture}-`));
    writeCatalog(out, renderCatalog(imported), false);
    return { imported, plan: await makePlan({ catalog: out, guests, scale: 0 }) };
};

const notesOf = (r: ImportResult, id: number): string[] => r.guests.find((g) => g.id === id)!.notes.map((n) => `${n.kind} ${n.key}: ${n.detail}`);

describe("the original's ordering tests, imported and planned", () => {
    describe("test_dispatcher_dependency_resolution: 9990 needs 9991, 9992 needs 9990", () => {
        let imported: ImportResult;
        let plan: PlanResult;
        before(async () => ({ imported, plan } = await importAndPlan("dependency-resolution")));

        it("orders them 9991, 9990, 9992: one readiness wave each, each start after the one before is ready", () => {
            assert.deepEqual(plan.recorded.waves, [[9991], [9990], [9992]]);
            assert.deepEqual(plan.recorded.guests.map((g) => g.id), [9991, 9990, 9992]);
            const start = (id: number) => plan.schedule.start.get(`${id}-start`)!;
            assert.ok(start(9991) < start(9990) && start(9990) < start(9992), `starts at ${[9991, 9990, 9992].map(start).join(", ")}`);
            assert.deepEqual(depNames(plan.recording, "9990-start"), ["9990-ct", "9990-fw-options", "9990-lxc-conf", "9991-start"]);
            assert.deepEqual(depNames(plan.recording, "9992-start"), ["9990-start", "9992-ct", "9992-fw-options", "9992-lxc-conf"]);
            assert.deepEqual(plan.recorded.reduced.map((e) => `${e.from}->${e.to}`), ["9990->9991", "9992->9990"]);
        });

        it("fills what the original took from its defaults, and says so", () => {
            const notes = notesOf(imported, 9990);
            for (const expected of [
                "added cores: missing: cores 2 from phoenix_hypervisor_config.json proxmox_defaults.lxc",
                "added memory_mb: missing: memoryMb 2048 from phoenix_hypervisor_config.json proxmox_defaults.lxc",
                "added storage_size_gb: missing: diskGb 4 from pct create's default",
                "added name: missing (the original failed without it): imported as ct9990",
                "added network_config.ip: missing: imported as dhcp",
            ]) {
                assert.ok(notes.includes(expected), `${expected}\nin:\n${notes.join("\n")}`);
            }
            assert.deepEqual(imported.guests.find((g) => g.id === 9990)!.guest.dependsOn, [9991]);
        });
    });

    describe("test_dispatcher_execution_ordering: execution_order 2, 1, 3", () => {
        let imported: ImportResult;
        let plan: PlanResult;
        before(async () => ({ imported, plan } = await importAndPlan("execution-ordering")));

        it("is Proxmox's startup order: sorted by it the guests are 9981, 9980, 9982", () => {
            const order = (id: number) => inputs(plan.recording, `${id}-ct`).startup.order as number;
            assert.deepEqual([9980, 9981, 9982].map(order), [2, 1, 3]);
            assert.deepEqual([9980, 9981, 9982].sort((a, b) => order(a) - order(b)), [9981, 9980, 9982]);
            assert.deepEqual(inputs(plan.recording, "9981-ct").startup, { order: 1, upDelay: 0, downDelay: 0 });
            assert.ok(notesOf(imported, 9980).some((n) => n.startsWith("changed execution_order: startup.order: 2 (Proxmox starts guests in ascending order")));
        });

        it("does not serialize provisioning: without dependencies the three proceed in one wave", () => {
            assert.deepEqual(plan.recorded.waves, [[9980, 9981, 9982]]);
            assert.deepEqual(plan.recorded.edges, []);
        });
    });

    describe("test_dispatcher_mixed_list: start 101 9001 102", () => {
        it("plans 101 and 102 as containers and 9001 as a VM: the catalog's kind decides, not the ID range", async () => {
            const { plan } = await importAndPlan("mixed-list", [101, 9001, 102]);
            assert.deepEqual(plan.recorded.selection.requested, [101, 9001, 102]);
            assert.deepEqual(plan.recorded.guests.map((g) => `${g.id} ${g.kind}`).sort(), ["101 lxc", "102 lxc", "9001 vm"]);
            assert.equal(plan.recording.registrations.find((r) => r.name === "9001-vm")?.type, "proxmoxve:index/vmLegacy:VmLegacy");
            assert.equal(plan.recording.registrations.find((r) => r.name === "101-ct")?.type, "proxmoxve:index/containerLegacy:ContainerLegacy");
        });
    });
});
