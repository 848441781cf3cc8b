// Runs a command-line entry point and turns its result into the exit code. Under the mock engine a program whose
// resources wait on each other in a loop never settles its promises: Node then drains its event loop and exits 0
// with nothing printed, which a CI step reads as success. The guard below turns that silent exit into an error.

export const STALLED =
    "error: the program stopped before it finished: its resources wait on each other in a loop (a dependency, route " +
    "or GPU-lane wait that closes a cycle the catalog check did not name). Nothing was planned; please report the catalog " +
    "that does this.\n";

/** Runs main; sets process.exitCode to its result, or to 1 with STALLED when Node would exit before main settles. */
export const runMain = (main: () => Promise<number>, err: (text: string) => void = (t) => process.stderr.write(t)): void => {
    let settled = false;
    process.once("beforeExit", () => {
        if (settled) return;
        settled = true;
        err(STALLED);
        process.exitCode = 1;
    });
    main().then(
        (code) => {
            settled = true;
            process.exitCode = code;
        },
        (e: unknown) => {
            settled = true;
            err(`error: ${e instanceof Error ? e.message : String(e)}\n`);
            process.exitCode = 1;
        },
    );
};
