// Turns zod issues into located, readable problems: "cores: expected number, received "two"",
// "cpus: unknown key; did you mean cores?".
import type { z } from "zod";
import { type Problem, showValue } from "./problems";
import type { YamlSource } from "./yamlSource";

type Issue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

const describe = (v: unknown): string => {
    if (v === undefined) return "nothing";
    if (v === null) return "null";
    if (Array.isArray(v)) return "a list";
    if (typeof v === "object") return "a mapping";
    return showValue(v);
};

/**
 * Fields whose value names the stack config key that holds a secret (a step's `secrets: { ENV: key }`,
 * `cloudInit.passwordSecret`): a value there that is no key name may be the secret itself, pasted in by mistake, and
 * a located problem goes to terminals, CI logs and PR comments. So it is described, never shown.
 */
const namesSecretKey = (path: readonly PropertyKey[]): boolean =>
    path[path.length - 1] === "passwordSecret" || (path.length >= 2 && path[path.length - 2] === "secrets");

/** The value a problem says it received; at a field that names a secret's key, only its kind and length. */
const received = (path: readonly PropertyKey[], v: unknown): string => {
    if (!namesSecretKey(path) || v === undefined || v === null || typeof v === "object") return describe(v);
    const what = typeof v === "string" ? `a text of ${v.length} characters` : `a ${typeof v}`;
    return `${what} (not shown: this field names the stack config key that holds the secret, set with pulumi config set --secret <key> <value>, and what is here may be the secret itself)`;
};

const distance = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++)
        for (let j = 1; j <= b.length; j++)
            d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
    return d[a.length][b.length];
};

/** The keys an object schema accepts at a path of the data (following lists, defaults and the union that matches). */
const keysAt = (schema: AnySchema, path: readonly PropertyKey[], data: unknown): string[] => {
    const def = (schema as any)._zod.def;
    switch (def.type) {
        case "default":
        case "optional":
        case "nullable":
        case "prefault":
            return keysAt(def.innerType, path, data);
        case "pipe":
            return keysAt(def.in, path, data);
        case "union": {
            const objects = (def.options as AnySchema[]).filter((o) => ["object", "union"].includes((o as any)._zod.def.type));
            const matching = def.discriminator
                ? objects.filter((o) => (o as any)._zod.def.shape?.[def.discriminator]?._zod.def.values?.includes((data as any)?.[def.discriminator]))
                : objects;
            return matching.length > 0 ? keysAt(matching[0], path, data) : [];
        }
        case "array":
            return path.length === 0 ? [] : keysAt(def.element, path.slice(1), (data as any)?.[path[0] as number]);
        case "object":
            if (path.length === 0) return Object.keys(def.shape);
            return def.shape[path[0] as string] ? keysAt(def.shape[path[0] as string], path.slice(1), (data as any)?.[path[0] as string]) : [];
        case "record":
            return path.length === 0 ? [] : keysAt(def.valueType, path.slice(1), (data as any)?.[path[0] as string]);
        default:
            return [];
    }
};

const valueAt = (data: unknown, path: readonly PropertyKey[]): unknown =>
    path.reduce<unknown>((v, k) => (v !== null && typeof v === "object" ? (v as any)[k as any] : undefined), data);

/** For a failed union, the branch that got furthest: the one whose issues are deepest, fewest first. */
const bestBranch = (branches: Issue[][]): Issue[] =>
    [...branches].sort((a, b) => Math.max(...b.map((i) => i.path.length)) - Math.max(...a.map((i) => i.path.length)) || a.length - b.length)[0] ?? [];

export const zodProblems = (issues: readonly Issue[], source: YamlSource, schema: AnySchema, prefix: PropertyKey[] = []): Problem[] =>
    issues.flatMap((issue): Problem[] => {
        const path = [...prefix, ...issue.path];
        const data = source.data;
        switch (issue.code) {
            case "unrecognized_keys": {
                const known = keysAt(schema, path, data);
                return issue.keys.map((key) => {
                    const close = known.filter((k) => distance(k, key) <= Math.max(2, Math.floor(k.length / 3)));
                    const hint = close.length > 0 ? `did you mean ${close.join(" or ")}?` : `expected one of: ${known.join(", ")}`;
                    return source.problemAt([...path, key], `unknown key; ${hint}`, true);
                });
            }
            case "invalid_union": {
                const disc = (issue as any).discriminator as string | undefined;
                if (disc) {
                    const at = path[path.length - 1] === disc ? path : [...path, disc];
                    return [source.problemAt(at, `expected ${keysAtDiscriminator(schema, disc).join(" or ")}, received ${describe(valueAt(data, at))}`)];
                }
                const value = valueAt(data, path);
                const branches = issue.errors.filter((b) => !(b.length === 1 && b[0].code === "invalid_type" && b[0].path.length === 0));
                if (branches.length > 0 && value !== null && typeof value === "object") return zodProblems(bestBranch(branches), source, schema, path);
                return [source.problemAt(path, `${issue.message === "Invalid input" ? "unexpected value" : issue.message}, received ${received(path, value)}`)];
            }
            case "invalid_type": {
                const value = valueAt(data, path);
                if (value === undefined) return [source.problemAt(path, `required (expected ${issue.expected})`)];
                const custom = issue.message.startsWith("Invalid input") ? `expected ${issue.expected}` : issue.message;
                return [source.problemAt(path, `${custom}, received ${received(path, value)}`)];
            }
            case "invalid_value": {
                const expected = issue.message.startsWith("Invalid") ? `expected ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}` : issue.message;
                return [source.problemAt(path, `${expected}, received ${received(path, valueAt(data, path))}`)];
            }
            case "invalid_key": {
                // A record key (a parameter or secret name): the key schema's own message, at the key.
                const key = path[path.length - 1];
                const inner = (issue as any).issues?.[0]?.message ?? "unexpected name";
                return [source.problemAt(path, `${inner}, received ${describe(key)}`, true)];
            }
            case "custom":
                // A refinement's message names what is wrong with the value itself.
                return [source.problemAt(path, issue.message)];
            default:
                return [source.problemAt(path, `${issue.message}, received ${received(path, valueAt(data, path))}`)];
        }
    });

const keysAtDiscriminator = (schema: AnySchema, disc: string): string[] => {
    const def = (schema as any)._zod.def;
    if (def.type !== "union") return [];
    return (def.options as AnySchema[]).flatMap((o) => ((o as any)._zod.def.shape?.[disc]?._zod.def.values ?? []) as string[]);
};
