// The one way an object or list of the original's configuration is copied whole into the catalog (vllm_engine_config
// as a parameter): withoutSecrets removes every key that looks like a secret, at any depth, reports each one with the
// stack secret to set instead, and remembers the removed values, so that the last guard before writing (render.ts)
// refuses a file that still contains one (a removed api_key repeated in a health check command, say). Keys the
// mappings read one by one (user_config) and unknown keys are reported through recordSecret the same way.
import { type Note, type Obj, note } from "./model";
import { isObj } from "./source";

/** Keys whose values are secrets: never copied, whatever they hold. */
export const SECRET_KEY = /pass|secret|token|api_?key|private_?key/i;

/** Where removed secrets are reported, and the names already suggested (so two secrets never share a config key). */
export interface SecretScope {
    /** Prefix of the suggested stack config keys: ct801, vm1001. */
    prefix: string;
    notes: Note[];
    /** Values the writer must refuse to write (shared by the whole import). */
    values: string[];
    /** Every secret removed in this scope: its dotted path in the original and the suggested stack config key. */
    removed: { path: string; configKey: string }[];
}

export const secretScope = (prefix: string, notes: Note[], values: string[]): SecretScope => ({ prefix, notes, values, removed: [] });

const words = (s: string): string[] =>
    s.replace(/([a-z0-9])([A-Z])/g, "$1 $2").split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w.toLowerCase());

/** A stack config key in camelCase from words in any case: ("ct801", "api_key") -> ct801ApiKey. */
export const configKeyOf = (...parts: string[]): string => {
    const ws = parts.flatMap(words);
    const key = ws.map((w, i) => (i === 0 ? w : w[0].toUpperCase() + w.slice(1))).join("");
    return /^[a-z]/.test(key) ? key : `secret${key[0]?.toUpperCase() ?? ""}${key.slice(1)}`;
};

/** The path's object keys without list indexes: vllm_engine_config.ServerConfig.api_key -> [vllm_engine_config, ServerConfig, api_key]. */
const segments = (path: string): string[] => path.split(".").map((s) => s.replace(/\[\d+\]/g, "")).filter(Boolean);

/** Suggested key: prefix + the secret's own key, prefixed with its parents' keys only when that name is taken. */
const suggestKey = (scope: SecretScope, path: string): string => {
    const segs = segments(path);
    for (let n = 1; n <= segs.length; n++) {
        const candidate = configKeyOf(scope.prefix, ...segs.slice(segs.length - n));
        if (!scope.removed.some((r) => r.configKey === candidate)) return candidate;
    }
    let i = 2;
    while (scope.removed.some((r) => r.configKey === `${configKeyOf(scope.prefix, ...segs)}${i}`)) i++;
    return `${configKeyOf(scope.prefix, ...segs)}${i}`;
};

/** Every string under a value. */
const strings = (v: unknown): string[] =>
    Array.isArray(v) ? v.flatMap(strings) : isObj(v) ? Object.values(v).flatMap(strings) : typeof v === "string" ? [v] : [];

/**
 * Removed values the writer must refuse: strings of at least 8 characters that are not also stated openly beside
 * them. The key pattern also matches keys that hold no secret (max_tokens, a tokenizer naming the model that `model`
 * names too); their numbers and short or repeated values would make the guard refuse ordinary files.
 */
const GUARDED_MIN = 8;

/** Reports one removed secret (a key of the original that is not imported) and remembers its values for the guard. */
export const recordSecret = (scope: SecretScope, path: string, value: unknown, usage?: string, statedOpenly: ReadonlySet<string> = new Set()): string => {
    const configKey = suggestKey(scope, path);
    scope.removed.push({ path, configKey });
    scope.values.push(...strings(value).filter((s) => s.length >= GUARDED_MIN && !statedOpenly.has(s)));
    scope.notes.push(note("secret", path,
        `not imported: ${path}; set it as a stack secret: pulumi config set --secret ${configKey} ...${usage ? ` (${usage})` : ""}`));
    return configKey;
};

/**
 * A copy of a value from the original without its secret-looking keys, at any depth (objects in lists included).
 * Each removed key gets a "secret" note naming the stack secret to set instead. Scalars are returned unchanged.
 */
export const withoutSecrets = (value: unknown, path: string, scope: SecretScope): unknown => {
    const removed: { path: string; value: unknown }[] = [];
    const strip = (v: unknown, at: string): unknown => {
        if (Array.isArray(v)) return v.map((x, i) => strip(x, `${at}[${i}]`));
        if (!isObj(v)) return v;
        const out: Obj = {};
        for (const [k, x] of Object.entries(v)) {
            const p = at ? `${at}.${k}` : k;
            if (SECRET_KEY.test(k)) removed.push({ path: p, value: x });
            else out[k] = strip(x, p);
        }
        return out;
    };
    const kept = strip(value, path);
    const statedOpenly = new Set(strings(kept));
    for (const r of removed) recordSecret(scope, r.path, r.value, undefined, statedOpenly);
    return kept;
};
