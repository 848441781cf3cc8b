// The provider twin (plan/twin): its rules cover every input the program sets, and day-two scenarios on the dev stack
// (first up, an edit, the next up) give exactly the operations the real providers and engine would run.
import { strict as assert } from "assert";
import { type Change, type RunResult, type StackState, refresh, twinUp } from "../plan/twin";
import { FIELD_RULES, UNMODELLED, rulesFor } from "../plan/twin/rules";
import { ruleFor, unwrapSecrets } from "../plan/twin/values";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import { ROOT, catalogCopy, devConfig, recordDev } from "./helpers";

/** Each operation other than "same", as `op name [fields] (reboot)`. */
export const ops = (r: { changes: Change[] }): string[] =>
    r.changes.filter((c) => c.op !== "same").map((c) => `${c.op} ${c.name}${c.fields.length > 0 ? ` [${c.fields.join(", ")}]` : ""}${c.reboot ? " (reboot)" : ""}`);

/** `pulumi up` then the deploy workflow's `pulumi refresh`. */
const deploy = async (overrides: Record<string, unknown> = {}, prior?: StackState): Promise<{ up: RunResult; state: StackState; refreshed: Change[] }> => {
    const up = await twinUp({ ...devConfig(overrides), prior });
    assert.equal(up.error, undefined, up.error);
    const r = refresh(up.state);
    return { up, state: r.state, refreshed: r.changes };
};

const leafPaths = (v: unknown, path = ""): string[] =>
    Array.isArray(v) ? v.flatMap((x, i) => leafPaths(x, `${path}[${i}]`))
    : v && typeof v === "object" ? Object.entries(v).flatMap(([k, x]) => leafPaths(x, path ? `${path}.${k}` : k))
    : [path];

describe("provider twin: rules", () => {
    it("cover every input the program sets on the whole catalog, each with its source", async () => {
        const rec = await recordDev({ "phoenix:selectAll": true });
        const unmodelled = new Set<string>();
        for (const r of rec.registrations.filter((x) => x.custom)) {
            for (const p of leafPaths(unwrapSecrets(r.inputs))) if (ruleFor(rulesFor(r.type), p, UNMODELLED) === UNMODELLED) unmodelled.add(`${r.type} ${p}`);
        }
        assert.deepEqual([...unmodelled], []);
        for (const [type, rules] of Object.entries(FIELD_RULES)) {
            for (const rule of rules) assert.match(rule.cite, /§\d|\.go:|resources\.go|inputs\.go|notes/, `${type} ${rule.path} cites its source`);
        }
    });
});

describe("provider twin: day two on the dev stack", function () {
    let first: { up: RunResult; state: StackState; refreshed: Change[] };
    before(async () => {
        first = await deploy();
    });

    it("first up creates every resource and nothing fails", () => {
        assert.equal(first.up.changes.filter((c) => c.op !== "create").length, 0);
        assert.equal(first.up.changes.length, first.up.recording.registrations.length);
    });

    it("the refresh after the first up reads back what create never stored: containers started with their addresses, 900 a template", () => {
        assert.deepEqual(ops({ changes: first.refreshed }), [
            "update 900-ct [template]",
            "update 103-ct [started, ipv4.eth0]",
            // The clone's disk as its resize step left it: the provider stored the source's size at create.
            "update 101-ct [disk.size, started, ipv4.eth0]",
            "update 102-ct [started, ipv4.eth0]",
        ]);
        const ct = first.state.resources.find((r) => r.name === "101-ct")!;
        assert.deepEqual([ct.outputs.started, ct.outputs.ipv4, ct.inputs.started], [true, { eth0: "10.0.0.153" }, true], "a refresh stores the read value into the inputs too");
    });

    it("a memory and core edit updates the container in place; the provider reboots it for the memory", async () => {
        const dir = catalogCopy({ "102-traefik-internal.yaml": (t) => t.replace("memoryMb: 2048", "memoryMb: 3072").replace("cores: 2", "cores: 3") });
        const next = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
        assert.equal(next.error, undefined);
        assert.deepEqual(ops(next), ["update 102-ct [cpu.cores, memory.dedicated] (reboot)"]);
        const edit = next.changes.find((c) => c.name === "102-ct")!;
        assert.deepEqual([edit.op, edit.fields, edit.reboot], ["update", ["cpu.cores", "memory.dedicated"], true]);
        assert.deepEqual(edit.rules.map((r) => r.cite), ["§2.1; CT:3603-3634", "§2.1; CT:3885 reboot required"]);
    });

    describe("the second up changes nothing", () => {
        it("an unchanged program re-run after the deploy has zero operations", async () => {
            const second = await twinUp({ ...devConfig(), prior: first.state });
            assert.equal(second.error, undefined);
            assert.deepEqual(ops(second), []);
        });

        it("the nightly drift check (pulumi refresh --expect-no-changes) after the deploy finds nothing", () => {
            assert.deepEqual(ops(refresh(first.state)), []);
        });

        it("gives each clone its catalog disk size on the first up (a clone starts with its source's)", () => {
            const size = (id: number) => first.up.state.node.guests.get(id)!.disks[0].sizeGb;
            assert.deepEqual([900, 103, 101, 102].map(size), [16, 16, 32, 16]);
            const stored = (s: StackState) => s.resources.find((r) => r.name === "101-ct")!.outputs.disk.size;
            assert.deepEqual([stored(first.up.state), stored(first.state)], [16, 32], "create stored the source's size; the refresh reads the resized disk");
            assert.deepEqual(first.up.changes.find((c) => c.name === "101-resize")!.runs.map((r) => r.ran), ["create"]);
        });

        it("a bigger catalog disk later grows it through the resize step alone", async () => {
            const dir = catalogCopy({ "101-nginx-phoenix.yaml": (t) => t.replace("diskGb: 32", "diskGb: 40") });
            const next = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
            assert.deepEqual(ops(next), ["update 101-resize [create]"]);
            assert.equal(next.state.node.guests.get(101)!.disks[0].sizeGb, 40);
        });

        it("a clone smaller than its source is a catalog error at the clone's diskGb", () => {
            const dir = catalogCopy({ "102-traefik-internal.yaml": (t) => t.replace("diskGb: 16", "diskGb: 8") });
            assert.throws(() => loadCatalog({ dir, node: "pve", baseDir: ROOT }), (e: CatalogError) =>
                /102-traefik-internal\.yaml:11:9 diskGb: 8 GB is smaller than the root disk of its clone source 900 \(16 GB\); a clone starts as a copy of it and a disk cannot shrink: set diskGb to 16 or more/.test(e.message));
        });
    });
});
