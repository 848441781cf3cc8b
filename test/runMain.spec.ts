import * as assert from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import { STALLED } from "../plan/runMain";

// Each case runs in its own Node process: what is under test is how that process exits.
const run = (mainBody: string) =>
    spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", `require(${JSON.stringify(path.join(__dirname, "../plan/runMain"))}).runMain(${mainBody})`], {
        encoding: "utf8",
        cwd: path.join(__dirname, ".."),
    });

describe("runMain (the plan CLI's exit code)", function () {
    this.timeout(60_000);

    it("exits 1 with an error, not 0 in silence, when the program's promises never settle (a wait loop)", () => {
        const r = run("() => new Promise(() => {})");
        assert.equal(r.status, 1);
        assert.equal(r.stdout, "");
        assert.equal(r.stderr, STALLED);
    });

    it("exits with main's code once main settles, and prints nothing of its own", () => {
        const ok = run("async () => { await new Promise((r) => setTimeout(r, 50)); return 0; }");
        assert.equal(ok.status, 0);
        assert.equal(ok.stderr, "");
        assert.equal(run("async () => 2").status, 2);
    });

    it("reports a rejected main as an error line, never a stack trace", () => {
        const r = run("async () => { throw new Error('boom'); }");
        assert.equal(r.status, 1);
        assert.equal(r.stderr, "error: boom\n");
    });
});
