// The one place where shell text is built. Every value from the catalog is single-quoted here; secrets never enter a
// command line: they travel on stdin into root-only files whose paths the scripts read (NAME_FILE).
import { createHash } from "crypto";

/** POSIX single quoting: safe for any value, including quotes, spaces, newlines and $(...). */
export const shq = (value: string | number): string => `'${String(value).replace(/'/g, `'\\''`)}'`;

/** `A='x' B='y z'`, in the given order. */
export const envAssignments = (env: Record<string, string | number>): string =>
    Object.entries(env)
        .map(([k, v]) => {
            if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`invalid environment name ${JSON.stringify(k)}`);
            return `${k}=${shq(v)}`;
        })
        .join(" ");

export const sha256 = (...parts: string[]): string => {
    const h = createHash("sha256");
    parts.forEach((p) => h.update(p).update("\0"));
    return h.digest("hex");
};

/**
 * stdin for a script run that needs secrets: write each secret into a private temporary directory (printf is a shell
 * builtin, so the value appears in no process's argv), export NAME_FILE, run the script, remove the files on exit.
 */
export const secretEnvelope = (script: string, secrets: Record<string, string>): string => {
    const delimiter = `PHOENIX_SCRIPT_${sha256(script).slice(0, 12)}`;
    if (script.split("\n").includes(delimiter)) throw new Error(`script contains the line ${delimiter}`);
    const writes = Object.entries(secrets).flatMap(([name, value]) => [
        `printf '%s' ${shq(value)} > "$phoenix_secrets/${name}"`,
        `export ${name}_FILE="$phoenix_secrets/${name}"`,
    ]);
    return [
        "set -Eeuo pipefail",
        "umask 077",
        'phoenix_secrets=$(mktemp -d)',
        "trap 'rm -rf \"$phoenix_secrets\"' EXIT",
        ...writes,
        `bash -s <<'${delimiter}'`,
        script.endsWith("\n") ? script.slice(0, -1) : script,
        delimiter,
        "",
    ].join("\n");
};

/** A bounded retry loop around a command, for health checks: `retries` attempts, `interval` seconds apart. */
export const retryLoop = (command: string, retries: number, interval: number, what: string): string =>
    [
        `for attempt in $(seq 1 ${retries}); do`,
        `  if bash -c ${shq(command)}; then echo ${shq(`${what}: healthy`)}; exit 0; fi`,
        `  if [ "$attempt" -lt ${retries} ]; then sleep ${interval}; fi`,
        "done",
        `echo ${shq(`${what}: health check failed after ${retries} attempts ${interval}s apart: ${command}`)} >&2`,
        "exit 1",
    ].join("\n");
