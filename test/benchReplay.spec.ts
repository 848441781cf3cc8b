// The benchmark's replay (plan/benchFloor.ts) registers a plan's own resources without the program: the target
// "within 1.3x of the same resources replayed" only means something if they are the same resources, options and
// secret inputs included, as the SDK sees them.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type Registration, recordProgram } from "../plan/engine";
import { FLOOR_PROGRAM, replayOf } from "../plan/benchSample";
import { devConfig, recordDev } from "./helpers";

/** What the SDK sent for a registration, apart from timings. */
const sent = ({ startedAt: _s, finishedAt: _f, propertyDependencies: _p, ...r }: Registration) => ({
    ...r,
    dependencies: [...r.dependencies].sort(),
    replaceWith: [...r.replaceWith].sort(),
    additionalSecretOutputs: [...r.additionalSecretOutputs].sort(),
});

describe("bench: the replay of a plan's resources", () => {
    it("registers the dev stack's resources as the program does: types, names, parents, dependencies, options, inputs and their secrets", async () => {
        const rec = await recordDev();
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-replay-"));
        try {
            const file = path.join(dir, "replay.json");
            fs.writeFileSync(file, JSON.stringify(replayOf(rec)));
            const { config, secretKeys } = devConfig({ "phoenix:floorReplay": file });
            const replayed = await recordProgram({ config, secretKeys, program: FLOOR_PROGRAM });
            assert.equal(replayed.error, undefined);
            assert.equal(replayed.registrations.length, rec.registrations.length);
            const program = new Map(rec.registrations.map((r) => [r.urn, sent(r)]));
            for (const r of replayed.registrations) assert.deepEqual(sent(r), program.get(r.urn), r.urn);
            // Not vacuous: the dev stack has what the replay must carry.
            assert.ok(rec.registrations.some((r) => r.protect && r.ignoreChanges.length > 0 && r.replaceWith.length === 0 && r.provider));
            assert.ok(rec.registrations.some((r) => r.replaceWith.length > 0));
            assert.ok(rec.registrations.some((r) => JSON.stringify(r.inputs).includes("4dabf18193072939515e22adb298388d")), "secret inputs");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
