// The provider twin (plan/twin): its rules cover every input the program sets, and day-two scenarios on the dev stack
// (first up, an edit, the next up) give exactly the operations the real providers and engine would run.
import { strict as assert } from "assert";
import { type Change, type RunResult, type StackState, refresh, twinUp } from "../plan/twin";
import { FIELD_RULES, UNMODELLED, rulesFor } from "../plan/twin/rules";
import { ruleFor, unwrapSecrets } from "../plan/twin/values";
import { catalogCopy, devConfig, recordDev } from "./helpers";

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
        const started = ["103-ct", "101-ct", "102-ct"].map((n) => `update ${n} [started, ipv4.eth0]`);
        assert.deepEqual(ops({ changes: first.refreshed }).sort(), ["update 900-ct [template]", ...started].sort());
        const ct = first.state.resources.find((r) => r.name === "101-ct")!;
        assert.deepEqual([ct.outputs.started, ct.outputs.ipv4, ct.inputs.started], [true, { eth0: "10.0.0.153" }, true], "a refresh stores the read value into the inputs too");
    });

    it("a memory and core edit updates the container in place; the provider reboots it for the memory", async () => {
        const dir = catalogCopy({ "102-traefik-internal.yaml": (t) => t.replace("memoryMb: 2048", "memoryMb: 3072").replace("cores: 2", "cores: 3") });
        const next = await twinUp({ ...devConfig({ "phoenix:catalog": dir }), prior: first.state });
        assert.equal(next.error, undefined);
        assert.deepEqual(ops(next).filter((o) => o.includes(" 102-")), ["update 102-ct [cpu.cores, memory.dedicated] (reboot)"]);
        const edit = next.changes.find((c) => c.name === "102-ct")!;
        assert.deepEqual([edit.op, edit.fields, edit.reboot], ["update", ["cpu.cores", "memory.dedicated"], true]);
        assert.deepEqual(edit.rules.map((r) => r.cite), ["§2.1; CT:3603-3634", "§2.1; CT:3885 reboot required"]);
    });
});
