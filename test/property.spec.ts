// Property tests over the whole catalog schema: every string and number field (enumerated by walking the zod schema,
// so a new field is covered without touching this file) gets generated values: random strings with control
// characters and separators, the field's own value with one of them inserted or a harmless suffix, huge, negative,
// fractional and non-finite numbers. Each value is either refused with a problem located at that field, or it
// reaches the shell and the files intact: the program is recorded, every in-guest command is run against stub
// pct/sudo/bash (bash scripts on a temporary PATH that record argv), the raw config lines are written into a fake
// container config, the NFS volumes into a fake fstab, and the value must be found there as it was written.
// Seeded (PHOENIX_PROPERTY_SEED to change), so a failure names its seed and reproduces.
import { strict as assert } from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { isMap, isScalar, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { loadCatalog, DEFAULTS_FILE } from "../catalog/load";
import type { Catalog, LxcSpec } from "../catalog/model";
import { CatalogError, type Problem, fieldPath } from "../catalog/problems";
import { Defaults, Guest, LxcGuest, VmGuest } from "../catalog/schema";
import { envName } from "../catalog/scripts";
import { YamlSource } from "../catalog/yamlSource";
import { zodProblems } from "../catalog/zodProblems";
import { hostId } from "../components/lxc";
import { recordProgram, unwrapSecrets } from "../plan/engine";
import { readStackConfig } from "../plan/stackFile";
import { ROOT, catalogCopy } from "./helpers";
import { HOSTILE, SAFE, SEED, mulberry32 } from "./hostile";

// --- the schema's fields ---------------------------------------------------------------------------------------------

const ITEM = "[]"; // any element of a list
const KEY = "{}"; // any key of a mapping (a record)

interface Leaf {
    owner: "lxc" | "vm" | "defaults";
    /** Field path with ITEM/KEY for lists and records; a trailing KEY alone names the record's keys themselves. */
    path: string[];
    type: "string" | "number";
}

/** Every string and number field (and record key) of a schema. Throws on a zod type it does not know, so none is skipped. */
const schemaLeaves = (schema: z.core.$ZodType, owner: Leaf["owner"], at: string[] = [], out: Leaf[] = []): Leaf[] => {
    const def = (schema as any)._zod.def;
    const add = (type: Leaf["type"], p = at) => {
        if (!out.some((l) => l.type === type && l.path.join("\0") === p.join("\0"))) out.push({ owner, path: p, type });
    };
    switch (def.type) {
        case "optional": case "default": case "nullable": case "prefault": case "readonly":
            return schemaLeaves(def.innerType, owner, at, out);
        case "pipe":
            return schemaLeaves(def.in, owner, at, out);
        case "object":
            for (const [k, v] of Object.entries(def.shape)) schemaLeaves(v as z.core.$ZodType, owner, [...at, k], out);
            return out;
        case "array":
            return schemaLeaves(def.element, owner, [...at, ITEM], out);
        case "record":
            add("string", [...at, KEY]); // the key itself
            return schemaLeaves(def.valueType, owner, [...at, KEY, "="], out);
        case "union":
            for (const o of def.options) schemaLeaves(o, owner, at, out);
            return out;
        case "string": case "enum":
            add("string");
            return out;
        case "literal":
            if (def.values.every((v: unknown) => typeof v === "string")) add("string");
            return out;
        case "number":
            add("number");
            return out;
        case "boolean":
            return out;
        default:
            throw new Error(`schemaLeaves: zod type ${def.type} at ${at.join(".")} is not handled; teach the property test about it`);
    }
};

// --- a seeded generator --------------------------------------------------------------------------------------------

const generator = (random: () => number) => {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const safe = (n: number) => Array.from({ length: n }, () => pick([...SAFE])).join("");
    return {
        strings: (base: unknown): string[] => {
            const b = typeof base === "string" ? base : String(base ?? "x");
            const at = Math.floor(random() * (b.length + 1));
            const hostile = Array.from({ length: 1 + Math.floor(random() * 12) }, () => (random() < 0.5 ? pick(HOSTILE) : safe(1 + Math.floor(random() * 4)))).join("");
            return [
                hostile,
                `${b.slice(0, at)}${pick(HOSTILE)}${b.slice(at)}`,
                `${b}${random() < 0.5 ? "" : "-"}${safe(2)}`,
                ...(random() < 0.2 ? ["y".repeat(10_000)] : []), // longer than any bound
            ];
        },
        numbers: (base: unknown): number[] => {
            const b = typeof base === "number" ? base : 1;
            return [
                pick([NaN, Infinity, -Infinity]),
                pick([-1 - Math.floor(random() * 1000), 2 ** 53 + 2, 1e300, 2 ** 32, -(2 ** 31)]),
                Math.max(0, b + Math.floor(random() * 7) - 3),
                b + 0.5,
            ];
        },
    };
};

// --- the base catalog: the reference one plus two guests that set every optional field ------------------------------

const EXTRA = path.join(ROOT, "test/fixtures/everything");
const extraFiles = (): Record<string, string> => Object.fromEntries(fs.readdirSync(EXTRA).map((f) => [f, fs.readFileSync(path.join(EXTRA, f), "utf8")]));
const CONFIG_KEYS = ["everythingVmPassword"];

interface BaseFile { name: string; owner: Leaf["owner"]; text: string; data: any }

/** Where each kind's fields are looked up, in order: the guests that set the most fields first. */
const OWNERS: Record<Leaf["owner"], string[]> = {
    lxc: ["950-everything-ct.yaml", "101-nginx-phoenix.yaml", "103-step-ca.yaml", "900-copy-base.yaml", "102-traefik-internal.yaml", "952-template-ct.yaml"],
    vm: ["1950-everything-vm.yaml", "1001-portainer.yaml", "1002-drphoenix.yaml", "9000-ubuntu-cloud-template.yaml", "1951-inherits-vm.yaml"],
    defaults: [DEFAULTS_FILE],
};
/** Fields whose change changes the graph, not a value: checked on the catalog, not in the recorded program. */
const STRUCTURAL = new Set(["id", "kind", "cloneFrom", "dependsOn", "after", "caFrom"]);

/** A concrete path for a leaf in a file's data: list items and record keys chosen where the rest of the path exists. */
const concretize = (data: unknown, leafPath: string[]): (string | number)[] | undefined => {
    const walk = (v: any, rest: string[], acc: (string | number)[]): (string | number)[] | undefined => {
        if (rest.length === 0) return v === undefined ? undefined : acc;
        const [head, ...tail] = rest;
        if (head === ITEM) {
            if (!Array.isArray(v)) return undefined;
            for (let i = 0; i < v.length; i++) {
                const r = walk(v[i], tail, [...acc, i]);
                if (r) return r;
            }
            return undefined;
        }
        if (head === KEY) {
            if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
            const keys = Object.keys(v);
            // The record's own keys: its first, or a new one when it is empty.
            if (tail.length === 0) return [...acc, keys[0] ?? newKey(acc)];
            for (const k of keys) {
                const r = walk(v[k], tail.slice(1), [...acc, k]); // tail[0] is "=": the value under the key
                if (r) return r;
            }
            // A value directly under an empty record: under a new key (set by mutate).
            return tail.length === 1 ? [...acc, newKey(acc)] : undefined;
        }
        if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
        return walk(v[head], tail, [...acc, head]);
    };
    return walk(data, leafPath, []);
};

/** A key for an empty record, valid for its key schema (what is refused is then the value, or the unknown name). */
const newKey = (at: (string | number)[]): string => {
    const record = String(at[at.length - 1]);
    return record === "secrets" ? "PROP_SECRET" : record === "featureParams" ? "base_setup" : "propParam";
};

const valueAt = (data: unknown, p: (string | number)[]): unknown => p.reduce<any>((v, k) => (v == null ? undefined : v[k]), data);

/** The file text with the value at the path replaced, or (a record key leaf) the key renamed. */
const documents = new Map<string, Document>();
const mutate = (text: string, p: (string | number)[], value: unknown, renameKey: boolean): string => {
    let parsedText = documents.get(text);
    if (!parsedText) documents.set(text, (parsedText = parseDocument(text)));
    const doc = parsedText.clone();
    if (renameKey) {
        const map = doc.getIn(p.slice(0, -1), true);
        assert.ok(isMap(map));
        const pair = map.items.find((i) => isScalar(i.key) && i.key.value === p[p.length - 1]);
        if (pair) (pair.key as any).value = value;
        else doc.setIn([...p.slice(0, -1), value], p[p.length - 2] === "secrets" ? "stepCaPassword" : "x"); // an empty record: a new entry
    } else doc.setIn(p, value);
    return String(doc);
};

// --- running the program's commands against stubs ------------------------------------------------------------------

const STUB = `#!/bin/bash
# Records its name and argv (NUL-separated, one record per call) and does nothing else.
{ printf '%s' "\${0##*/}"; for a in "$@"; do printf '\\0%s' "$a"; done; printf '\\0\\n'; } >> "$ARGV_LOG"
`;

class Stubs {
    readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-prop-"));
    readonly bin = path.join(this.dir, "bin");
    private n = 0;
    constructor() {
        fs.mkdirSync(this.bin);
        for (const tool of ["pct", "sudo", "bash", "qm"]) fs.writeFileSync(path.join(this.bin, tool), STUB, { mode: 0o755 });
    }

    /** argv of every stubbed call the shell text makes (run by the real bash, the stubs first on PATH). */
    argv(script: string, stdin = ""): string[][] {
        const log = path.join(this.dir, `argv-${this.n++}`);
        const r = spawnSync("/bin/bash", ["-c", script], { input: stdin, env: { PATH: `${this.bin}:/usr/bin:/bin`, ARGV_LOG: log }, encoding: "utf8" });
        assert.equal(r.status, 0, `${script.slice(0, 200)}\n${r.stderr}`);
        return fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\0\n").filter(Boolean).map((rec) => rec.split("\0")) : [];
    }

    /** The container config after the lxc-conf script ran against a fake /etc/pve/lxc/<id>.conf. */
    lxcConf(id: number, script: string): string {
        const conf = path.join(this.dir, `${id}-${this.n++}.conf`);
        fs.writeFileSync(conf, "arch: amd64\n");
        this.argv(script.split(`/etc/pve/lxc/${id}.conf`).join(conf).split("/run/lock/lxc").join(this.dir));
        return fs.readFileSync(conf, "utf8");
    }

    /** /etc/fstab after features/nfs_volumes.sh ran with NFS_VOLUMES in a fake root, with the bats stubs. */
    fstab(nfsVolumes: string): string {
        const root = path.join(this.dir, `root-${this.n++}`);
        fs.mkdirSync(path.join(root, "etc"), { recursive: true });
        const stubs = path.join(ROOT, "test/bats/stubs");
        execFileSync("/bin/bash", [path.join(ROOT, "features/nfs_volumes.sh")], {
            env: { PATH: `${stubs}:/usr/bin:/bin`, STUBS_SRC: stubs, PHOENIX_ROOT: root, STUB_LOG: path.join(root, "stub.log"), NFS_VOLUMES: nfsVolumes },
            stdio: ["ignore", "ignore", "pipe"],
        });
        return fs.readFileSync(path.join(root, "etc/fstab"), "utf8");
    }

    remove(): void {
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

// --- the property ----------------------------------------------------------------------------------------------------

interface Sample { leaf: Leaf; file: string; path: (string | number)[]; value: string | number; renameKey: boolean }
const label = (s: Sample) => `${s.file} ${fieldPath(s.path)}${s.renameKey ? " (key)" : ""} = ${JSON.stringify(typeof s.value === "string" && s.value.length > 60 ? `${s.value.slice(0, 60)}...` : s.value)}`;

/** Parses each distinct file text once: a catalog with one changed file re-parses only that file. */
const parsed = new Map<string, YamlSource>();
const readSource = (shownFile: string, absolutePath: string): YamlSource => {
    const key = `${shownFile}\0${fs.readFileSync(absolutePath, "utf8")}`;
    let source = parsed.get(key);
    if (!source) parsed.set(key, (source = new YamlSource(shownFile, absolutePath)));
    return source;
};
/** As the dev stack loads it: its one node declared, so a guest on any other is refused at its field. */
const load = (dir: string): Catalog => loadCatalog({ dir, node: "phoenix", nodes: ["phoenix"], baseDir: ROOT, readSource });

/** Problems of a catalog whose one file changed: that file alone first (most values stop there), else the whole catalog. */
const problemsWith = (dir: string, file: string, owner: Leaf["owner"], texts: Record<string, string>): Problem[] | "loaded" => {
    for (const [f, t] of Object.entries(texts)) fs.writeFileSync(path.join(dir, f), t);
    const source = readSource(path.join(path.basename(dir), file), path.join(dir, file));
    if (source.problems.length > 0) return source.problems;
    const schema = owner === "defaults" ? Defaults : Guest;
    const parsed = schema.safeParse(source.data, { reportInput: true });
    if (!parsed.success) return zodProblems(parsed.error.issues, source, schema);
    try {
        load(dir);
        return "loaded";
    } catch (e) {
        if (e instanceof CatalogError) return e.problems;
        throw e;
    }
};

/** A refusal is located: in the changed file (or, for defaults, reported against defaults.yaml), at the field or around it. */
const located = (problems: Problem[], s: Sample): boolean => {
    const field = fieldPath(s.renameKey ? [...s.path.slice(0, -1), s.value] : s.path);
    const around = (at: string) => at === field || field.startsWith(`${at}.`) || field.startsWith(`${at}[`) || at.startsWith(field);
    return problems.some((p) => {
        if (p.line < 1 || p.col < 1) return false;
        // A default that a guest's step refuses is reported at that step, naming the default; node hardware a guest
        // relies on is reported at the guest, pointing at defaults.yaml.
        const named = /^defaults\.yaml (\S+):/.exec(p.message)?.[1];
        if (s.leaf.owner === "defaults" && named) return around(named);
        if (s.leaf.owner === "defaults" && field.startsWith("nodes") && p.message.includes("defaults.yaml nodes.")) return true;
        // Or at the field the value clashes with (node and gpus), naming the value, or at the same field of another
        // item of its list (a duplicate is reported where it repeats).
        const sameListField = (at: string) => at.replace(/\[\d+\]/g, "[]") === field.replace(/\[\d+\]/g, "[]");
        return p.file.endsWith(s.file) && (around(p.field) || sameListField(p.field) || (typeof s.value === "string" && s.value.length > 2 && p.message.includes(s.value)));
    });
};

/** Every string and number the recorded program hands to Proxmox, the node and the guests, after running its commands. */
const sinks = async (dir: string, catalog: Catalog, stubs: Stubs, files: string[]): Promise<{ strings: string[]; numbers: Set<number> }> => {
    const sc = readStackConfig("dev");
    const keys = [...new Set([...CONFIG_KEYS, ...[...catalog.guests.values()].flatMap((g) => g.configKeys.map((k) => k.key))])];
    const rec = await recordProgram({
        config: { ...sc.config, "phoenix:catalog": dir, ...selection(files), ...Object.fromEntries(keys.map((k) => [`phoenix:${k}`, `[secret ${k}]`])) },
        secretKeys: [...sc.secretKeys, ...keys.map((k) => `phoenix:${k}`)],
    });
    assert.equal(rec.error, undefined, String(rec.error));
    const strings: string[] = [];
    const numbers = new Set<number>();
    const collect = (v: unknown): void => {
        if (typeof v === "string") strings.push(v);
        else if (typeof v === "number") numbers.add(v);
        else if (Array.isArray(v)) v.forEach(collect);
        else if (v && typeof v === "object") Object.values(v).forEach(collect);
    };
    // In-guest steps, each in a subshell of one bash run: the environment as the guest's env(1) receives it; then the
    // health checks' loops, whose own command reaches `bash -c`; the raw lines in a fake container config.
    const inGuest: string[] = [];
    const healthLoops: string[] = [];
    for (const r of rec.registrations) {
        const inputs = unwrapSecrets(r.inputs);
        collect(inputs);
        if (r.type !== "command:remote:Command" || typeof inputs.create !== "string") continue;
        if (r.name.endsWith("-lxc-conf")) strings.push(...stubs.lxcConf(Number(r.name.split("-")[0]), inputs.create).split("\n"));
        if (!/^(pct exec \d+ -- env |sudo env )/m.test(inputs.create)) continue;
        inGuest.push(inputs.create);
        if (r.name.endsWith("-health")) healthLoops.push(inputs.stdin);
    }
    const inSubshells = (scripts: string[]) => scripts.map((c, i) => `(\n${c}\n) || { echo "script ${i} failed" >&2; exit 1; }`).join("\n");
    const argv = stubs.argv(inSubshells(inGuest)).flat();
    strings.push(...argv, ...stubs.argv(inSubshells(healthLoops)).flat());
    for (const nfs of argv.filter((a) => a.startsWith("NFS_VOLUMES="))) strings.push(...stubs.fstab(nfs.slice("NFS_VOLUMES=".length)).split("\n"));
    return { strings, numbers };
};

/**
 * The guests a round changed (their dependencies come along) and 102, whose routes carry every traefikService; a
 * change of the defaults can reach any guest: then all of them.
 */
const selection = (files: string[]): Record<string, unknown> =>
    files.includes(DEFAULTS_FILE)
        ? { "phoenix:selectAll": true }
        : { "phoenix:guests": [...new Set([102, ...files.map((f) => Number(f.split("-")[0]))])] };

/** What must be found in the sinks for an accepted value (as written, or as Phoenix must transform it). */
const expectation = (s: Sample, catalog: Catalog): { string?: string; number?: number } | undefined => {
    const field = s.path.filter((k) => typeof k === "string");
    const last = field[field.length - 1];
    if (field.includes("model") && field.includes("gpus")) return undefined; // a GPU's model is shown in the plan only
    if (s.renameKey) {
        if (field.includes("featureParams")) return undefined; // defaults for a feature no guest runs reach nothing, by design
        if (field.includes("datastores")) return undefined; // how a datastore is shared is catalog metadata: it reaches no resource
        return field[field.length - 2] === "secrets" ? { string: `${String(s.value)}_FILE` } : { string: `${envName(String(s.value))}=` };
    }
    if (field[0] === "datastores") return undefined; // catalog metadata (sharing, nodes): it reaches no resource
    if (field[0] === "rawLxc") return { string: String(s.value).replace(/^(lxc\.[a-z0-9_.-]+)\s*[:=]\s*/, "$1: ") };
    if (field.includes("owner")) {
        const spec = catalog.guests.get(Number(s.file.split("-")[0])) as LxcSpec;
        return { number: hostId(spec, last === "uid" ? "uid" : "gid", s.value as number) };
    }
    return typeof s.value === "number" ? { number: s.value } : { string: s.value };
};

const found = (want: { string?: string; number?: number }, got: { strings: string[]; numbers: Set<number> }): boolean =>
    want.string !== undefined
        ? got.strings.some((x) => x.includes(want.string!))
        : got.numbers.has(want.number!) || got.strings.some((x) => new RegExp(`(^|[^0-9.])${String(want.number).replace(/[.+]/g, "\\$&")}([^0-9.]|$)`).test(x));

describe(`property: every string and number field of the schema, generated values (seed ${SEED})`, function () {
    this.timeout(120_000);
    // The fields the two kinds share are tried on a container and on a VM.
    const byOwner: Leaf[] = [...schemaLeaves(LxcGuest, "lxc"), ...schemaLeaves(VmGuest, "vm"), ...schemaLeaves(Defaults, "defaults")];
    assert.equal((Guest as any)._zod.def.options.length, 2, "Guest is the union of LxcGuest and VmGuest");

    let dir: string;
    let base: Map<string, BaseFile>;
    let stubs: Stubs;
    before(() => {
        dir = catalogCopy(extraFiles());
        base = new Map(fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")).map((f) => {
            const text = fs.readFileSync(path.join(dir, f), "utf8");
            const owner = f === DEFAULTS_FILE ? "defaults" : (/^kind: (lxc|vm)$/m.exec(text)![1] as "lxc" | "vm");
            return [f, { name: f, owner, text, data: parseDocument(text).toJS() }];
        }));
        stubs = new Stubs();
        load(dir); // the base itself is valid
    });
    after(() => stubs.remove());

    const placed = (leaf: Leaf): { file: string; path: (string | number)[] } | undefined => {
        for (const f of OWNERS[leaf.owner]) {
            const p = concretize(base.get(f)!.data, leaf.path);
            if (p) return { file: f, path: p };
        }
        return undefined;
    };

    it("finds every field of the schema in the base catalog (add a new field to test/fixtures/everything/)", () => {
        const missing = byOwner.filter((l) => !placed(l)).map((l) => `${l.owner} ${l.path.join(".")} (${l.type})`);
        assert.deepEqual(missing, []);
        assert.ok(byOwner.length > 100, `${byOwner.length} fields`);
    });

    it("refuses each generated value at its field, or hands it on intact to Proxmox, the shell and the files", async () => {
        const random = mulberry32(SEED);
        const gen = generator(random);
        const accepted: Sample[] = [];
        const failures: string[] = [];
        let refusedCount = 0;
        for (const leaf of byOwner) {
            const where = placed(leaf)!;
            const renameKey = leaf.path[leaf.path.length - 1] === KEY;
            const original = renameKey ? where.path[where.path.length - 1] : valueAt(base.get(where.file)!.data, where.path);
            const values = leaf.type === "string" ? gen.strings(original) : gen.numbers(original);
            for (const value of values) {
                const s: Sample = { leaf, file: where.file, path: where.path, value, renameKey };
                const text = mutate(base.get(where.file)!.text, where.path, value, renameKey);
                const result = problemsWith(dir, where.file, leaf.owner, { [where.file]: text });
                fs.writeFileSync(path.join(dir, where.file), base.get(where.file)!.text);
                if (result === "loaded") accepted.push(s);
                else if (located(result, s)) refusedCount++;
                else failures.push(`${label(s)}: refused but not located at the field: ${result.map((p) => `${p.file}:${p.line}:${p.col} ${p.field.slice(0, 80)}: ${p.message.slice(0, 120)}`).join(" | ")}`);
            }
        }
        assert.deepEqual([...failures], [], `seed ${SEED}`);

        // Accepted values: structural ones on the catalog; the others applied together (a round per value index) and
        // looked for in what the recorded program and its commands produce.
        const rounds: Sample[][] = [];
        for (const s of accepted.filter((x) => !x.path.some((k) => typeof k === "string" && STRUCTURAL.has(k)) || x.renameKey)) {
            // One change per place: two values of one field, or a field and the list or key it is in, go to different rounds.
            const overlap = (o: Sample) => o.file === s.file && [[o.path, s.path], [s.path, o.path]].some(([a, b]) => a.every((k, i) => b[i] === k));
            const round = rounds.find((r) => !r.some(overlap));
            if (round) round.push(s);
            else rounds.push([s]);
        }
        for (const s of accepted.filter((x) => x.path.some((k) => typeof k === "string" && STRUCTURAL.has(k)) && !x.renameKey)) {
            const texts = { [s.file]: mutate(base.get(s.file)!.text, s.path, s.value, false) };
            for (const [f, t] of Object.entries(texts)) fs.writeFileSync(path.join(dir, f), t);
            const catalog = load(dir);
            fs.writeFileSync(path.join(dir, s.file), base.get(s.file)!.text);
            const ids = [...catalog.guests.values()].flatMap((g) => [g.id, ...g.dependsOn, g.cloneFrom, ...g.features.flatMap((f) => [f.caFrom, ...f.after])]);
            if (!ids.includes(s.value as number)) failures.push(`${label(s)}: accepted, but the catalog has no such reference`);
        }
        let recorded = 0;
        while (rounds.length > 0) {
            const round = rounds.shift()!;
            const texts = new Map<string, string>();
            for (const s of round) texts.set(s.file, mutate(texts.get(s.file) ?? base.get(s.file)!.text, s.path, s.value, s.renameKey));
            for (const [f, t] of texts) fs.writeFileSync(path.join(dir, f), t);
            let catalog: Catalog;
            try {
                catalog = load(dir);
            } catch (e) {
                // Values accepted one by one can clash together (retries × interval): move the ones named to a round of their own.
                assert.ok(e instanceof CatalogError, String(e));
                const clashing = round.filter((s) => located(e.problems, s));
                assert.ok(clashing.length > 0, `seed ${SEED}: a combination failed without naming a field: ${e.message}`);
                rounds.push(...clashing.map((s) => [s]));
                const rest = round.filter((s) => !clashing.includes(s));
                if (rest.length > 0) rounds.unshift(rest);
                for (const f of texts.keys()) fs.writeFileSync(path.join(dir, f), base.get(f)!.text);
                continue;
            }
            const got = await sinks(dir, catalog, stubs, [...texts.keys()]);
            recorded++;
            for (const s of round) {
                const want = expectation(s, catalog);
                if (want && !found(want, got)) failures.push(`${label(s)}: accepted, but ${JSON.stringify(want).slice(0, 120)} reaches no resource input, argv or file`);
            }
            for (const f of texts.keys()) fs.writeFileSync(path.join(dir, f), base.get(f)!.text);
        }
        assert.deepEqual([...failures], [], `seed ${SEED}`);
        assert.ok(refusedCount > 0 && accepted.length > 0, `both outcomes occur (${refusedCount} refused, ${accepted.length} accepted)`);
        console.log(`      ${byOwner.length} fields, ${refusedCount + accepted.length} values: ${refusedCount} refused at their field, ${accepted.length} accepted and found intact (${recorded} recordings)`);
    });
});
