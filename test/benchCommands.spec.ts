// The bench times the plan commands as typed (plan/benchCommands.ts): the shell's `time` must count the CPU of the
// processes the command starts, never read the command's own output as a timing, and a failing command must stop the
// bench with the command's own message instead of a figure.
import { strict as assert } from "assert";
import { parseTimes, timeCommand } from "../plan/benchCommands";

const node = (script: string): string[] => [process.execPath, "-e", script];

describe("bench: the commands as typed", () => {
    it("counts the CPU time of the process the command starts", () => {
        // Spins until it has used 300 ms of CPU itself, however busy the machine is.
        const t = timeCommand(node("const c = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }; while (c() < 300);"));
        assert.ok(t.cpuMs >= 300, `cpu ${t.cpuMs} ms`);
        assert.ok(t.wallMs > 0);
    });

    it("counts the processes the command's processes start (npm starts node, which starts git)", () => {
        const spin = "const c = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }; while (c() < 300);";
        const t = timeCommand(node(`require("child_process").spawnSync(process.execPath, ["-e", ${JSON.stringify(spin)}]);`));
        assert.ok(t.cpuMs >= 300, `cpu ${t.cpuMs} ms`);
    });

    it("reads only the shell's timing, not what the command prints", () => {
        // Either planted line read as the timing would give thousands of seconds.
        const t = timeCommand(node('console.log("7000.000 7000.000 7000.000"); console.error("9000.000 9000.000 9000.000");'));
        assert.ok(t.cpuMs < 60_000, `cpu ${t.cpuMs} ms`);
        assert.ok(t.wallMs < 60_000, `wall ${t.wallMs} ms`);
    });

    it("stops with the command's exit status and the end of its stderr", () => {
        assert.throws(() => timeCommand(node('console.error("first line"); console.error("error: --since nope: not a commit"); process.exit(2)')), (e: Error) => {
            assert.match(e.message, /exited with 2: first line\nerror: --since nope: not a commit$/);
            assert.ok(e.message.startsWith(`${process.execPath} -e`));
            return true;
        });
    });

    it("parses `time` with TIMEFORMAT %3R %3U %3S: wall, and user plus system as CPU", () => {
        assert.deepEqual(parseTimes("noise\n12.345 10.000 1.500\n"), { wallMs: 12345, cpuMs: 11500 });
        assert.throws(() => parseTimes("real 0m1.000s\n"), /no timing in the shell's output: "real 0m1.000s"/);
    });
});
