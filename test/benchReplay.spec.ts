// The benchmark's replay (plan/benchFloor.ts) registers a plan's own resources without the program: the target
// "within 1.3x of the same resources replayed" only means something if they are the same resources, options and
// secret inputs included, as the SDK sends them.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type Recording, type Registration, recordProgram } from "../plan/engine";
import { FLOOR_PROGRAM, replayOf } from "../plan/benchSample";
import { runConfig } from "../plan/plan";
import { writeSyntheticCatalog } from "../plan/synthetic";
import { recordDev } from "./helpers";

/** What the SDK sent for a registration, apart from timings. */
const sent = ({ startedAt: _s, finishedAt: _f, ...r }: Registration) => ({
    ...r,
    propertyDependencies: Object.fromEntries(Object.entries(r.propertyDependencies).map(([k, urns]) => [k, [...urns].sort()])),
    dependencies: [...r.dependencies].sort(),
    replaceWith: [...r.replaceWith].sort(),
    additionalSecretOutputs: [...r.additionalSecretOutputs].sort(),
});

/** The recording replayed by the bench's floor program, under the same stack config. */
const replay = async (rec: Recording, config: Record<string, unknown>, secretKeys: string[]): Promise<Recording> => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-replay-"));
    try {
        const file = path.join(dir, "replay.json");
        fs.writeFileSync(file, JSON.stringify(replayOf(rec)));
        return await recordProgram({ config: { ...config, "phoenix:floorReplay": file }, secretKeys, program: FLOOR_PROGRAM });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
};

const assertSameRegistrations = (program: Recording, replayed: Recording): void => {
    assert.equal(replayed.error, undefined);
    assert.equal(replayed.registrations.length, program.registrations.length);
    const byUrn = new Map(program.registrations.map((r) => [r.urn, sent(r)]));
    for (const r of replayed.registrations) assert.deepEqual(sent(r), byUrn.get(r.urn), r.urn);
};

describe("bench: the replay of a plan's resources", () => {
    it("registers the dev stack's resources as the program does: types, names, parents, dependencies, options, inputs and their secrets", async () => {
        const rec = await recordDev();
        const { config, secretKeys } = runConfig({});
        assertSameRegistrations(rec, await replay(rec, config, secretKeys));
        // Not vacuous: the dev stack has everything the replay must carry.
        const has = (what: string, p: (r: Registration) => boolean) => assert.ok(rec.registrations.some(p), what);
        has("protect with ignoreChanges and the explicit provider", (r) => r.protect && r.ignoreChanges.length > 0 && r.provider !== "");
        has("replaceWith", (r) => r.replaceWith.length > 0);
        has("deletedWith", (r) => r.deletedWith !== "");
        has("an option left unset (the replay must not send it as false)", (r) => r.custom && !r.explicit.includes("protect"));
        has("customTimeouts", (r) => r.customTimeouts !== undefined);
        has("a component's providers", (r) => !r.custom && Object.keys(r.providers ?? {}).length > 0);
        has("an input computed from another resource's output", (r) => Object.values(r.propertyDependencies).some((u) => u.length > 0));
        has("secret inputs", (r) => JSON.stringify(r.inputs).includes("4dabf18193072939515e22adb298388d"));
    });

    it("registers a synthetic 3-node cluster's resources as the program does (template copies, cross-node clones, HA)", async () => {
        const syn = writeSyntheticCatalog({ guests: 30, nodes: ["pve1", "pve2", "pve3"], haEvery: 5 });
        try {
            const { config, secretKeys } = runConfig({ catalog: syn.dir, guests: "all", config: syn.config });
            const rec = await recordProgram({ config, secretKeys });
            assert.equal(rec.error, undefined);
            assert.ok(rec.registrations.some((r) => r.type === "proxmoxve:index/haresource:Haresource"), "HA resources");
            assertSameRegistrations(rec, await replay(rec, config, secretKeys));
        } finally {
            syn.remove();
        }
    });
});
