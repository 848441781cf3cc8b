// The plan commands as a user runs them, each in a fresh process started by a shell that times it: `npm run plan`
// (with its defaults, and with --scale 0, the cheapest plain plan) and `npm run plan -- --since HEAD`. The shell's
// `time` counts the wall clock and the CPU time of every process the command starts (npm, node with its collector's
// threads, git), so start-up, module loading and output count as the user waits for them.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PROJECT_ROOT } from "./stackFile";

export interface CommandTiming {
    wallMs: number;
    cpuMs: number;
}

/** `time` prints "real user sys" in seconds with milliseconds; the command's own output goes elsewhere. */
const TIMED = 'err=$1; shift; TIMEFORMAT="%3R %3U %3S"; time "$@" >/dev/null 2>"$err"';

/** Parses what TIMED prints: the last line of the shell's stderr. */
export const parseTimes = (stderr: string): CommandTiming => {
    const last = stderr.trim().split("\n").pop() ?? "";
    const m = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$/.exec(last.trim());
    if (!m) throw new Error(`no timing in the shell's output: ${JSON.stringify(last)}`);
    return { wallMs: Number(m[1]) * 1000, cpuMs: (Number(m[2]) + Number(m[3])) * 1000 };
};

/** Runs `command` (argv) from the project root and times it; a failing command is an error with its stderr. */
export const timeCommand = (command: string[], cwd = PROJECT_ROOT): CommandTiming => {
    const err = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-bench-cmd-")), "stderr");
    try {
        // The C locale for `time`'s decimal point; no npm update notice in the figures.
        const env = { ...process.env, LC_ALL: "C", npm_config_update_notifier: "false" };
        const run = spawnSync("bash", ["-c", TIMED, "bash", err, ...command], { cwd, encoding: "utf8", env });
        if (run.error) throw new Error(`${command.join(" ")}: ${run.error.message}`);
        if (run.status !== 0) {
            const why = fs.existsSync(err) ? fs.readFileSync(err, "utf8").trim().split("\n").slice(-5).join("\n") : run.stderr;
            throw new Error(`${command.join(" ")} exited with ${run.status ?? run.signal}: ${why}`);
        }
        return parseTimes(run.stderr);
    } finally {
        fs.rmSync(path.dirname(err), { recursive: true, force: true });
    }
};

/** `npm run plan -- ARGS` as typed at a shell (npm's own start-up included, as the user waits for it). */
export const planCommand = (args: string[]): string[] => ["npm", "run", "--silent", "plan", "--", ...args];
