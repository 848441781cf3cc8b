// Value helpers of the twin: secrets unwrapped for comparison, deep equality, copies, and the input paths that differ.
import { isSecretValue, unwrapSecrets } from "../engine";
import type { FieldRule } from "./rules";

export { unwrapSecrets };

export type Props = Record<string, any>;

const isObject = (v: unknown): v is Props => typeof v === "object" && v !== null && !Array.isArray(v);

export const deepEqual = (a: unknown, b: unknown): boolean => {
    if (a === b) return true;
    if (isSecretValue(a) || isSecretValue(b)) return deepEqual(isSecretValue(a) ? (a as Props).value : a, isSecretValue(b) ? (b as Props).value : b);
    if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
    if (isObject(a) && isObject(b)) {
        // No key set to build: a key missing on one side is undefined there, and the other side's keys are checked too.
        for (const k in a) if (!deepEqual(a[k], b[k])) return false;
        for (const k in b) if (!(k in a) && b[k] !== undefined) return false;
        return true;
    }
    return false;
};

/** A deep copy of plain data (secret wrappers stay wrappers). */
export const copy = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

const join = (path: string, key: string | number): string => (typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key);

/**
 * Paths where the planned value `news` differs from the stored value `stored`, visiting only keys the program sets now
 * or set before (`olds`): an Optional+Computed attribute the config never set does not diff (§1). A list of another
 * length differs as a whole.
 */
export const changedPaths = (news: Props, stored: Props, olds: Props = {}): string[] => {
    const out: string[] = [];
    const visit = (path: string, nv: unknown, sv: unknown, ov: unknown) => {
        const n = isSecretValue(nv) ? (nv as Props).value : nv;
        const s = isSecretValue(sv) ? (sv as Props).value : sv;
        if (deepEqual(n, s)) return;
        if (isObject(n) && isObject(s)) {
            const o = isObject(ov) ? ov : {};
            for (const k of new Set([...Object.keys(n), ...Object.keys(o)])) visit(join(path, k), n[k], s[k], o[k]);
            return;
        }
        if (Array.isArray(n) && Array.isArray(s) && n.length === s.length) {
            n.forEach((x, i) => visit(join(path, i), x, s[i], Array.isArray(ov) ? ov[i] : undefined));
            return;
        }
        out.push(path);
    };
    visit("", news, stored, olds);
    return out;
};

/** `disks[0].size` -> `disks[].size`. */
export const normalizePath = (path: string): string => path.replace(/\[\d+\]/g, "[]");

/** The path with any list index removed from its first segment: `triggers[0]` -> `triggers`. */
export const topKey = (path: string): string => path.split(/[.[]/)[0];

export const matchesRule = (path: string, rulePath: string): boolean => {
    if (rulePath === "*") return true;
    const p = normalizePath(path);
    return p === rulePath || p.startsWith(`${rulePath}.`) || p.startsWith(`${rulePath}[`);
};

export const ruleFor = (rules: readonly FieldRule[], path: string, fallback: FieldRule): FieldRule => rules.find((r) => matchesRule(path, r.path)) ?? fallback;

/** An engine property path (`triggers[*]`, `disk.size`) matches a changed path at or below it. */
export const matchesEnginePath = (changed: string, pattern: string): boolean => matchesRule(changed, normalizePath(pattern.replace(/\[\*\]/g, "[]")).replace(/\[\]$/, ""));

const pathKeys = (path: string): string[] => path.replace(/\[\*\]/g, "").split(/\.|\[(\d+)\]/).filter((x) => x !== undefined && x !== "");

/** The value at a dotted path (indexes allowed). */
export const getPath = (obj: Props, path: string): unknown =>
    pathKeys(path).reduce<any>((v, k) => (v === undefined || v === null ? undefined : isSecretValue(v) ? v.value[k] : v[k]), obj);

/**
 * A copy of `obj` with the value at `path` set (or removed when undefined), sharing everything off the path: the
 * inputs are large (scripts) and never mutated.
 */
export const withPath = (obj: Props, path: string, value: unknown): Props => {
    const set = (o: any, keys: string[]): any => {
        const [k, ...rest] = keys;
        const base = Array.isArray(o) ? [...o] : { ...(o ?? {}) };
        if (rest.length === 0) {
            if (value === undefined) delete base[k];
            else base[k] = value;
        } else base[k] = set(o?.[k], rest);
        return base;
    };
    return set(obj, pathKeys(path));
};

/** POSIX single-quoted text back to its value: 'it'\''s' -> it's. */
export const unquote = (quoted: string): string => quoted.slice(1, -1).replace(/'\\''/g, "'");
