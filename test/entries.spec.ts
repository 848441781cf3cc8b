// What a user meets when the catalog folder holds something that is not a guest file, or loading fails in a way
// nothing anticipated: `pulumi up` (the program entry, index.ts) and `npm run plan` both stop with a located message
// and register nothing. The Pulumi Node.js runtime prints a RunError's message alone and any other error with its
// stack (@pulumi/pulumi cmd/run/run.js, uncaughtHandler), so "no stack trace" means "a RunError".
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { recordProgram } from "../plan/engine";
import { main as planMain } from "../plan/cli";
import { catalogCopy, devConfig, projectCopy, recordDev } from "./helpers";

/** The program on a catalog folder: its RunError's lines, nothing registered. */
const refusal = async (dir: string): Promise<string[]> => {
    const rec = await recordDev({ "phoenix:catalog": dir });
    assert.ok(rec.error instanceof pulumi.RunError, `expected a RunError, got ${rec.error?.stack}`);
    assert.equal(rec.registrations.length, 0, "nothing registered");
    assert.ok(!/\n\s+at /.test(rec.error.message), "no stack frames in the message");
    return rec.error.message.split("\n");
};

describe("catalog entries that are not guest files: located problems through the program entry, never a trace", () => {
    it("a directory named like a guest file (950-dir.yaml)", async () => {
        const dir = catalogCopy();
        fs.mkdirSync(path.join(dir, "950-dir.yaml"));
        assert.deepEqual(await refusal(dir), [
            "The guest catalog has 1 problem:",
            `${dir}/950-dir.yaml:1:1 (file): a directory, not a guest file: rename it so its name does not end in .yaml, or move it out of the catalog`,
        ]);
    });

    it("a broken symbolic link, a link loop, and a defaults.yaml that is a directory, each at its file", async () => {
        const dir = catalogCopy({ "defaults.yaml": null });
        fs.mkdirSync(path.join(dir, "defaults.yaml"));
        fs.symlinkSync("/nonexistent/960.yaml", path.join(dir, "960-gone.yaml"));
        fs.symlinkSync("961-loop.yaml", path.join(dir, "961-loop.yaml"));
        assert.deepEqual(await refusal(dir), [
            "The guest catalog has 3 problems:",
            `${dir}/960-gone.yaml:1:1 (file): a symbolic link to /nonexistent/960.yaml, which does not exist`,
            `${dir}/961-loop.yaml:1:1 (file): a symbolic link that loops (it points, through other links, back to itself)`,
            `${dir}/defaults.yaml:1:1 (file): a directory, not a guest file: rename it so its name does not end in .yaml, or move it out of the catalog`,
        ]);
    });

    it("bytes that are not UTF-8, at the line and column of the first one", async () => {
        const dir = catalogCopy();
        const text = fs.readFileSync(path.join(dir, "101-nginx-phoenix.yaml"));
        const at = text.indexOf("Nginx gateway");
        fs.writeFileSync(path.join(dir, "101-nginx-phoenix.yaml"), Buffer.concat([text.subarray(0, at), Buffer.from([0xe9]), text.subarray(at)]));
        assert.deepEqual(await refusal(dir), [
            "The guest catalog has 1 problem:",
            `${dir}/101-nginx-phoenix.yaml:6:14 (file): not UTF-8 text (byte 0xe9 here); save the file as UTF-8`,
        ]);
    });

    it("npm run plan reports the same, exit 1, no trace", async () => {
        const dir = catalogCopy();
        fs.mkdirSync(path.join(dir, "950-dir.yaml"));
        const out: string[] = [];
        const err: string[] = [];
        const code = await planMain(["--catalog", dir, "--mermaid"], { out: (t) => void out.push(t), err: (t) => void err.push(t) });
        assert.equal(code, 1);
        assert.equal(err.join(""), `error: The guest catalog has 1 problem:\n${dir}/950-dir.yaml:1:1 (file): a directory, not a guest file: rename it so its name does not end in .yaml, or move it out of the catalog\n`);
        assert.deepEqual(out, []);
    });

    it("a failure nothing anticipated while loading is a RunError naming the step (the original kept as its cause), not a trace", async () => {
        const dir = projectCopy({
            "catalog/load.ts": (t) => t.replace("const { catalog, problems } = readCatalog(opts);", "const { catalog, problems } = readCatalog(opts);\n    (opts as any).broken.field = 1;"),
        });
        const { config, secretKeys } = devConfig();
        const rec = await recordProgram({ config, secretKeys, program: path.join(dir, "index") });
        assert.ok(rec.error instanceof pulumi.RunError, `expected a RunError, got ${rec.error?.stack}`);
        assert.equal(rec.error.message,
            "loading the catalog failed unexpectedly (nothing was registered): TypeError: Cannot set properties of undefined (setting 'field'). " +
            "This is not an error Phoenix knows how to explain; please report it.");
        assert.ok((rec.error as Error & { cause?: unknown }).cause instanceof TypeError, "the original is kept");
        assert.equal(rec.registrations.length, 0);
    });
});

describe("a guest that names itself is reported once, at the field", () => {
    const lines = async (file: string, from: string, to: string): Promise<string[]> => {
        const dir = catalogCopy({
            [file]: (t) => {
                assert.ok(t.includes(from), `${file} has ${from}`);
                return t.replace(from, to);
            },
        });
        return (await refusal(dir)).map((l) => l.split(`${dir}/`).join(""));
    };

    it("dependsOn itself: one problem, no cycle of one", async () => {
        assert.deepEqual(await lines("101-nginx-phoenix.yaml", "dependsOn: [103]", "dependsOn: [103, 101]"), [
            "The guest catalog has 1 problem:",
            "101-nginx-phoenix.yaml:8:18 dependsOn[1]: a guest cannot depend on itself",
        ]);
    });

    it("cloneFrom, caFrom and a step's after naming its own guest: one problem each", async () => {
        assert.deepEqual(await lines("101-nginx-phoenix.yaml", "cloneFrom: 900", "cloneFrom: 101"), [
            "The guest catalog has 1 problem:",
            "101-nginx-phoenix.yaml:7:12 cloneFrom: a guest cannot clone itself",
        ]);
        assert.deepEqual(await lines("101-nginx-phoenix.yaml", "{ name: trusted_ca, caFrom: 103 }", "{ name: trusted_ca, caFrom: 101 }"), [
            "The guest catalog has 1 problem:",
            "101-nginx-phoenix.yaml:36:33 features[1].caFrom: a guest cannot take the CA certificate from itself: the step would wait for its own guest to be ready",
        ]);
        assert.deepEqual(await lines("101-nginx-phoenix.yaml", "  - step_cli\n", "  - { name: step_cli, after: [101] }\n"), [
            "The guest catalog has 1 problem:",
            "101-nginx-phoenix.yaml:37:31 features[2].after[0]: a step cannot wait for its own guest (a guest's steps already run in order)",
        ]);
    });
});
