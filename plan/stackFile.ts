// Reads a stack's config the way the Pulumi CLI would hand it to the program: Pulumi.<stack>.yaml values over the
// defaults declared in Pulumi.yaml, checked by the CLI's rules first. Secrets are never read: every secret key gets a
// placeholder (the table's, those the project declares and those the stack's catalog names), so the offline plan runs
// with no credentials and cannot print one.
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { PROJECT_ROOT, namedConfigKeys } from "../catalog/load";
import { CONFIG_KEYS } from "../components/configKeys";

export { PROJECT_ROOT };

export interface StackConfig {
    project: string;
    stack: string;
    config: Record<string, unknown>;
    secretKeys: string[];
    /** What the Pulumi CLI would refuse before the program runs, every secret the project declares being set (cliConfigProblems). */
    cliProblems: string[];
}

export const placeholderFor = (key: string): string => `[secret ${key}]`;

/** A key as Pulumi.yaml declares it (pulumi sdk/go/common/workspace/project.go ProjectConfigType). */
export interface Declared {
    type?: string;
    items?: { type: string; items?: unknown };
    default?: unknown;
    value?: unknown;
    secret?: boolean;
    description?: string;
}

export interface ProjectFile {
    name: string;
    config: Record<string, Declared>;
}

export const readProjectFile = (root = PROJECT_ROOT): ProjectFile => {
    const file = parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { name: string; config?: Record<string, Declared> };
    return { name: file.name, config: file.config ?? {} };
};

/** The config section of Pulumi.<stack>.yaml, keys as written (namespaced, e.g. phoenix:guests). */
export const readStackValues = (stack: string, root = PROJECT_ROOT): Record<string, unknown> => {
    const stackPath = path.join(root, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackPath)) throw new Error(`no stack file Pulumi.${stack}.yaml in ${root}`);
    return ((parse(fs.readFileSync(stackPath, "utf8")) ?? {}) as { config?: Record<string, unknown> }).config ?? {};
};

/**
 * An encrypted value, or a list or map holding one: the CLI counts either as secure (pulumi
 * sdk/go/common/resource/config/object.go, object.Secure and MarshalString), e.g. `pulumi config set --secret --path
 * 'sshPublicKeys[0]'` writes a list of encrypted items.
 */
const isSecure = (v: unknown): boolean =>
    Array.isArray(v) ? v.some(isSecure) : typeof v === "object" && v !== null && ("secure" in v || Object.values(v).some(isSecure));
const namespaced = (project: string, k: string): string => (k.includes(":") ? k : `${project}:${k}`);

/** pulumi project.go ValidateConfigValue, on a value as the CLI holds it (a scalar as its text, lists and maps as data). */
const validType = (type: string, items: Declared["items"], v: unknown): boolean => {
    switch (type) {
        case "string":
            return typeof v === "string";
        case "integer":
            return (typeof v === "number" && Number.isInteger(v)) || (typeof v === "string" && /^[+-]?\d+$/.test(v));
        case "boolean":
            return typeof v === "boolean" || v === "true" || v === "false";
        case "object":
            return typeof v === "object" && v !== null && !Array.isArray(v);
        default:
            return Array.isArray(v) && items !== undefined && v.every((x) => validType(items.type, items.items as Declared["items"], x));
    }
};

/** pulumi project.go InferFullTypeName: array<array<string>> and so on. */
const fullTypeName = (type: string, items: Declared["items"]): string =>
    items ? `array<${fullTypeName(items.type, items.items as Declared["items"])}>` : type;

/** The types a project file may declare (pulumi sdk/go/common/workspace/project.json, simpleConfigType). */
const CONFIG_TYPES = new Set(["string", "integer", "boolean", "array", "object"]);

/**
 * What the CLI refuses in Pulumi.yaml's config section before it looks at any stack: pulumi
 * sdk/go/common/workspace/project.go (*Project).Validate, lines 837-889, and project.json's configTypeDeclaration
 * (a type among CONFIG_TYPES, only the attributes type, items, description, secret, default and value).
 */
export const projectFileProblems = (project: ProjectFile): string[] => {
    const problems: string[] = [];
    const attributes = new Set(["type", "items", "description", "secret", "default", "value"]);
    for (const [k, d] of Object.entries(project.config)) {
        const extra = Object.keys(d).filter((a) => !attributes.has(a));
        if (extra.length > 0) problems.push(`configuration key '${k}': unknown attribute ${extra.join(", ")}`);
        if (d.type !== undefined && !CONFIG_TYPES.has(d.type)) problems.push(`configuration key '${k}': type must be one of ${[...CONFIG_TYPES].join(", ")}`);
        if (d.default != null && d.value != null) problems.push(`project config '${k}' cannot have both a 'default' and 'value' attribute`);
        if (k.includes(":") && !k.startsWith(`${project.name}:`)) {
            if (d.type !== undefined) problems.push(`Configuration key '${k}' is not namespaced by the project and should not define a type`);
            continue;
        }
        if (d.type === "array" && d.items === undefined) {
            problems.push(`The configuration key '${k}' declares an array but does not specify the underlying type via the 'items' attribute`);
        } else if (d.type !== undefined && d.default != null && !validType(d.type, d.items, d.default)) {
            problems.push(`The default value specified for configuration key '${k}' is not of the expected type '${fullTypeName(d.type, d.items)}'`);
        }
    }
    return problems;
};

/** A stack file value as the CLI holds it: scalars as text (`phoenix:sshPort: 22` is "22"), lists and maps as data. */
const asCliValue = (v: unknown): unknown => (v !== null && typeof v === "object" ? v : String(v));

/**
 * The Pulumi CLI's checks before it runs the program, as in pulumi/pulumi 1b59498 (pkg/workspace/config.go):
 * mergeConfig (lines 295-355) collects every declared key of the project's namespace that has neither a default nor
 * a value and is not set in the stack, and fails with one error ("Stack 'dev' is missing configuration values 'a' and
 * 'b'", formatMissingKeys, lines 30-64); a declared key's default is first stored as a plain value (lines 327-347).
 * Then validateStackConfigValue (lines 119-157), for explicitly typed keys only: a declared secret whose value is not
 * encrypted fails ("Stack 'dev' with configuration key 'k' must be encrypted as it's secret", a plain default
 * included), and a value of another type fails ("... must be of type 'array<integer>'", sdk/go/common/workspace/
 * project.go ValidateConfigValue, line 771). The CLI stops at the first of these; this lists them all. `userSecrets`
 * are the keys the user sets with `pulumi config set --secret` (encrypted, never committed). The CLI accepts stack
 * keys the project does not declare (nothing in mergeConfig looks at them), so those are not checked.
 */
export const cliConfigProblems = (stack: string, project: ProjectFile, values: Record<string, unknown>, userSecrets: Iterable<string> = []): string[] => {
    const set = new Map(Object.entries(values).map(([k, v]) => [namespaced(project.name, k), v]));
    for (const k of userSecrets) set.set(namespaced(project.name, k), { secure: "v1:..." });
    const keys = Object.keys(project.config).sort();
    const missing = keys.filter((k) => {
        const d = project.config[k];
        return namespaced(project.name, k).startsWith(`${project.name}:`) && !set.has(namespaced(project.name, k)) && d.default == null && d.value == null;
    });
    if (missing.length > 0) {
        const list = missing.length === 1 ? `'${missing[0]}'` : `${missing.slice(0, -1).map((k) => `'${k}'`).join(", ")} and '${missing[missing.length - 1]}'`;
        return [`Stack '${stack}' is missing configuration value${missing.length === 1 ? "" : "s"} ${list}`];
    }
    const problems: string[] = [];
    for (const k of keys) {
        const d = project.config[k];
        if (d.type === undefined) continue;
        const given = set.get(namespaced(project.name, k));
        const value = given !== undefined ? given : d.default ?? d.value;
        if (d.secret && !isSecure(value)) problems.push(`Stack '${stack}' with configuration key '${k}' must be encrypted as it's secret`);
        else if (!isSecure(value) && !validType(d.type, d.items, given !== undefined ? asCliValue(value) : value)) {
            problems.push(`Stack '${stack}' with configuration key '${k}' must be of type '${fullTypeName(d.type, d.items)}'`);
        }
    }
    return problems;
};

/**
 * Whether a guest file's text can name a config key at all: only a `secrets` map or a `passwordSecret` field does
 * (namedConfigKeys). YAML can spell such a key without those letters only through an escape in a double-quoted key or
 * a tag (`!!binary c2VjcmV0cw==` decodes to "secrets"; a %TAG directive can hide the tag's name, never its `!`); a
 * multi-line key folds into spaces, and merge keys and aliases repeat a key written out elsewhere in the file. The
 * rest need no parse: parsing every file was a second reading of the whole catalog before the program reads it.
 */
export const mayNameConfigKeys = (text: string): boolean =>
    text.includes("secrets") || text.includes("passwordSecret") || text.includes("\\") || text.includes("!");

/** The stack config keys a catalog's guest files name (step secrets, cloud-init passwords), valid files or not. */
export const catalogSecretKeys = (dir: string): string[] => {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [];
    const keys = new Set<string>();
    for (const f of fs.readdirSync(dir).filter((x) => /\.ya?ml$/.test(x)).sort()) {
        let data: unknown;
        try {
            const text = fs.readFileSync(path.join(dir, f), "utf8");
            if (!mayNameConfigKeys(text)) continue;
            data = parse(text);
        } catch {
            continue; // the program reports what is wrong with it
        }
        for (const { key } of namedConfigKeys(data)) keys.add(key);
    }
    return [...keys];
};

/**
 * Placeholders for the secrets the stack's catalog names (the catalog `phoenix:catalog` says, under `root`), for
 * those not set already; `except` are keys deliberately left unset (a test of the missing-key check).
 */
export const addCatalogSecrets = (sc: { project: string; config: Record<string, unknown>; secretKeys: string[] }, root = PROJECT_ROOT, except: ReadonlySet<string> = new Set()): void => {
    const catalog = String(sc.config[`${sc.project}:catalog`] ?? "guests");
    for (const k of catalogSecretKeys(path.resolve(root, catalog))) {
        const key = namespaced(sc.project, k);
        if (key in sc.config || except.has(key)) continue;
        sc.config[key] = placeholderFor(k);
        sc.secretKeys.push(key);
    }
};

export const readStackConfig = (stack: string, root = PROJECT_ROOT): StackConfig => {
    const projectFile = readProjectFile(root);
    const project = projectFile.name;
    const stackValues = readStackValues(stack, root);
    const key = (k: string) => namespaced(project, k);
    const config: Record<string, unknown> = {};
    const secretKeys: string[] = [];
    const placeholder = (k: string, list: boolean) => {
        if (secretKeys.includes(key(k))) return;
        config[key(k)] = list ? [placeholderFor(k)] : placeholderFor(k);
        secretKeys.push(key(k));
    };
    for (const [k, decl] of Object.entries(projectFile.config)) if (!decl.secret && decl.default !== undefined) config[key(k)] = decl.default;
    // Every secret the program may read: the table's, and (for a checkout of an older revision) the project's.
    for (const spec of CONFIG_KEYS) if (spec.secret) placeholder(spec.key, spec.type.endsWith("[]"));
    for (const [k, decl] of Object.entries(projectFile.config)) if (decl.secret) placeholder(k, decl.type === "array");
    for (const [k, v] of Object.entries(stackValues)) {
        if (isSecure(v)) placeholder(k, Array.isArray(v));
        else if (!secretKeys.includes(key(k))) config[key(k)] = v; // a plain value for a secret key keeps the placeholder
    }
    const sc = { project, stack, config, secretKeys };
    addCatalogSecrets(sc, root);
    const declaredSecrets = Object.entries(projectFile.config).filter(([, d]) => d.secret && d.default === undefined).map(([k]) => k);
    return { ...sc, cliProblems: [...projectFileProblems(projectFile), ...cliConfigProblems(stack, projectFile, stackValues, declaredSecrets)] };
};
