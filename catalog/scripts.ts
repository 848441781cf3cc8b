// Feature and application scripts declare their parameters in their header, e.g.
//   # @param CA_URL required URL of the internal Step-CA
//   # @param LOCALE default=en_US.UTF-8 System locale
//   # @secret CA_PASSWORD required Password of the CA keys (read from the file named by CA_PASSWORD_FILE)
// The catalog checks every guest's params against these lines, so a typo is an error before anything runs.
import * as fs from "fs";
import * as path from "path";

export interface ScriptParam {
    name: string; // UPPER_SNAKE environment name
    secret: boolean;
    required: boolean;
    default?: string;
    description: string;
}

export interface ScriptInfo {
    name: string;
    path: string; // absolute
    content: string;
    params: Map<string, ScriptParam>;
}

const HEADER_LINE = /^# @(param|secret) ([A-Z][A-Z0-9_]*) (required|optional|default=\S*) (.*)$/;

export const parseScriptHeader = (content: string): Map<string, ScriptParam> => {
    const params = new Map<string, ScriptParam>();
    for (const line of content.split("\n")) {
        const m = HEADER_LINE.exec(line);
        if (!m) continue;
        const [, kind, name, mode, description] = m;
        params.set(name, {
            name,
            secret: kind === "secret",
            required: mode === "required",
            default: mode.startsWith("default=") ? mode.slice("default=".length) : undefined,
            description,
        });
    }
    return params;
};

/** camelCase catalog parameter -> UPPER_SNAKE environment name (caDnsNames -> CA_DNS_NAMES). */
export const envName = (param: string): string => param.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();

/** Reads scripts once per process: the catalog, the components and the plan all share them. */
export class ScriptLibrary {
    private readonly cache = new Map<string, ScriptInfo | undefined>();
    constructor(readonly dir: string) {}

    feature(name: string): ScriptInfo | undefined {
        return this.read(name, path.join(this.dir, `${name}.sh`));
    }

    application(name: string): ScriptInfo | undefined {
        return this.read(`apps/${name}`, path.join(this.dir, "apps", `${name}.sh`));
    }

    private read(key: string, file: string): ScriptInfo | undefined {
        if (!this.cache.has(key)) {
            const content = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
            this.cache.set(key, content === undefined ? undefined : { name: key, path: file, content, params: parseScriptHeader(content) });
        }
        return this.cache.get(key);
    }
}
