// Feature and application scripts declare their parameters in their header, e.g.
//   # @param CA_URL required format=https-url URL of the internal Step-CA
//   # @param LOCALE default=en_US.UTF-8 format=locale System locale
//   # @secret CA_PASSWORD required Password of the CA keys (read from the file named by CA_PASSWORD_FILE)
// The catalog checks every guest's params against these lines, so a typo is an error before anything runs, and each
// value against the parameter's format (features/lib/common.sh; `text`, one line, when the header names none).
// Scripts that run a network service also declare what it listens on, and scripts that use the internal CA how:
//   # @listens 443 https websecure entry point (the port, or a parameter holding [host:]port; http or https, where
//                                              https means a certificate from the internal CA)
//   # @ca http-01 Obtains its certificate by ACME (api: talks to CA_URL; http-01: also answers the CA on port 80)
// catalog/routes.ts checks every route against them. Scripts that install a long-running server name its unit, and a
// server that reserves a share of its GPUs' memory when it starts names the parameter holding it and its default:
//   # @unit vllm.service The server (a template's conversion stops and disables it: each clone starts its own)
//   # @gpu-share GPU_MEMORY_UTILIZATION 0.9 Share of each GPU's memory reserved at start (catalog/gpuShares.ts)
import * as fs from "fs";
import * as path from "path";
import { type ParamFormat, TEXT_FORMAT, parseFormats } from "./paramFormats";

export interface ScriptParam {
    name: string; // UPPER_SNAKE environment name
    secret: boolean;
    required: boolean;
    default?: string;
    /** A format of features/lib/common.sh (PHOENIX_FORMAT) or "lines"; `text` when the header names none. */
    format: string;
    description: string;
}

/** A service a script runs: `port` is a number, or the name of the parameter holding `[host]:port`. */
export interface ScriptListener {
    port: number | string;
    scheme: "http" | "https";
    description: string;
}

/** How a script uses the internal CA at CA_URL: its API only, or also ACME http-01 answered on the guest's port 80. */
export type CaUse = "api" | "http-01";

export interface ScriptInfo {
    name: string;
    path: string; // absolute
    content: string; // the script's own text (its header declares the params)
    /** What runs in the guest on stdin of `bash -s`: features/lib/common.sh, "\n", then content (see runnableText). */
    runnable: string;
    params: Map<string, ScriptParam>;
    listens: ScriptListener[];
    ca?: CaUse;
    /** systemd units the script installs and enables (`# @unit`). */
    units: string[];
    /** The parameter holding the share of each GPU's memory the server reserves at start, and its default (`# @gpu-share`). */
    gpuShare?: { param: string; default: number };
}

const HEADER_LINE = /^# @(param|secret) ([A-Z][A-Z0-9_]*) (required|optional|default=\S*)(?: format=([a-z0-9-]+))? (.*)$/;

export const parseScriptHeader = (content: string): Map<string, ScriptParam> => {
    const params = new Map<string, ScriptParam>();
    for (const line of content.split("\n")) {
        const m = HEADER_LINE.exec(line);
        if (!m) continue;
        const [, kind, name, mode, format, description] = m;
        params.set(name, {
            name,
            secret: kind === "secret",
            required: mode === "required",
            default: mode.startsWith("default=") ? mode.slice("default=".length) : undefined,
            format: format ?? TEXT_FORMAT,
            description,
        });
    }
    return params;
};

const LISTENS_LINE = /^# @listens (\d{1,5}|[A-Z][A-Z0-9_]*) (http|https) (.*)$/;
const CA_LINE = /^# @ca (api|http-01) (.*)$/;
const UNIT_LINE = /^# @unit ([A-Za-z0-9@_.-]+\.service) (.*)$/;
const GPU_SHARE_LINE = /^# @gpu-share ([A-Z][A-Z0-9_]*) (0(?:\.\d+)?|1(?:\.0+)?) (.*)$/;

export const parseScriptServices = (content: string): Pick<ScriptInfo, "listens" | "ca" | "units" | "gpuShare"> => {
    const listens: ScriptListener[] = [];
    const units: string[] = [];
    let ca: CaUse | undefined;
    let gpuShare: ScriptInfo["gpuShare"];
    for (const line of content.split("\n")) {
        const l = LISTENS_LINE.exec(line);
        if (l) listens.push({ port: /^\d+$/.test(l[1]) ? Number(l[1]) : l[1], scheme: l[2] as "http" | "https", description: l[3] });
        const c = CA_LINE.exec(line);
        if (c) ca = c[1] as CaUse;
        const u = UNIT_LINE.exec(line);
        if (u) units.push(u[1]);
        const g = GPU_SHARE_LINE.exec(line);
        if (g) gpuShare = { param: g[1], default: Number(g[2]) };
    }
    return { listens, ca, units, ...(gpuShare ? { gpuShare } : {}) };
};

/** camelCase catalog parameter -> UPPER_SNAKE environment name (caDnsNames -> CA_DNS_NAMES). */
export const envName = (param: string): string => param.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();

/** The helpers every script uses, relative to the features directory. */
export const COMMON_LIB = path.join("lib", "common.sh");

/**
 * The shared helpers ahead of a script, as one text for `bash -s`. The script skips sourcing lib/common.sh when its
 * marker function is already defined, and the ERR trap counts the script's lines from after the "\n" (the last line
 * of common.sh computes that offset), so this joint must stay exactly `common + "\n" + script`.
 */
export const runnableText = (common: string, script: string): string => `${common}\n${script}`;

/** Reads scripts once per process: the catalog, the components and the plan all share them. */
export class ScriptLibrary {
    private readonly cache = new Map<string, ScriptInfo | undefined>();
    private common?: string;
    private formatTable?: Map<string, ParamFormat>;
    constructor(readonly dir: string) {}

    /** The parameter formats (features/lib/common.sh phoenix_format), read once. */
    formats(): ReadonlyMap<string, ParamFormat> {
        return (this.formatTable ??= parseFormats(this.commonLib()));
    }

    /** features/lib/common.sh, read once (on the first script found). */
    private commonLib(): string {
        if (this.common === undefined) {
            const file = path.join(this.dir, COMMON_LIB);
            if (!fs.existsSync(file)) throw new Error(`${file} is missing: every feature script needs its shared helpers`);
            this.common = fs.readFileSync(file, "utf8");
        }
        return this.common;
    }

    feature(name: string): ScriptInfo | undefined {
        return this.read(name, path.join(this.dir, `${name}.sh`));
    }

    application(name: string): ScriptInfo | undefined {
        return this.read(`apps/${name}`, path.join(this.dir, "apps", `${name}.sh`));
    }

    private read(key: string, file: string): ScriptInfo | undefined {
        if (!this.cache.has(key)) {
            const content = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
            this.cache.set(
                key,
                content === undefined
                    ? undefined
                    : { name: key, path: file, content, runnable: runnableText(this.commonLib(), content), params: parseScriptHeader(content), ...parseScriptServices(content) },
            );
        }
        return this.cache.get(key);
    }
}
