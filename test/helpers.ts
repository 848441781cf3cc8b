// Shared test helpers: record the program once per config, find resources, map them to their guests, and build
// throwaway catalogs from the real one with a few edits.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { strict as assert } from "assert";
import { stringify } from "yaml";
import { loadCatalog } from "../catalog/load";
import type { GuestSpec } from "../catalog/model";
import { type Recording, type Registration, isSecretValue, recordProgram, unwrapSecrets } from "../plan/engine";
import { readStackConfig } from "../plan/stackFile";
import type { Change } from "../plan/twin";
import { main as importMain } from "../tools/importPhoenix";

export const ROOT = path.resolve(__dirname, "..");

/** A twin run's operations other than "same", as `op name [fields] (reboot)`. */
export const ops = (r: { changes: Change[] }): string[] =>
    r.changes.filter((c) => c.op !== "same").map((c) => `${c.op} ${c.name}${c.fields.length > 0 ? ` [${c.fields.join(", ")}]` : ""}${c.reboot ? " (reboot)" : ""}`);

const recordings = new Map<string, Promise<Recording>>();

/** The dev stack's recording, with config overrides (e.g. { "phoenix:guests": [101] }); memoized per config. */
export const recordDev = (overrides: Record<string, unknown> = {}): Promise<Recording> => {
    const key = JSON.stringify(overrides);
    if (!recordings.has(key)) {
        const sc = readStackConfig("dev");
        recordings.set(key, recordProgram({ config: { ...sc.config, ...overrides }, secretKeys: sc.secretKeys }));
    }
    return recordings.get(key)!;
};

/** The dev stack's config with overrides, for a twin run. */
export const devConfig = (overrides: Record<string, unknown> = {}): { config: Record<string, unknown>; secretKeys: string[] } => {
    const sc = readStackConfig("dev");
    return { config: { ...sc.config, ...overrides }, secretKeys: sc.secretKeys };
};

export const find = (rec: Recording, name: string, type?: string): Registration => {
    const r = rec.registrations.find((x) => x.name === name && (!type || x.type === type));
    if (!r) throw new Error(`no resource named ${name}${type ? ` of type ${type}` : ""}; have: ${rec.registrations.map((x) => x.name).join(", ")}`);
    return r;
};

export const urnOf = (rec: Recording, name: string): string => find(rec, name).urn;

/** Names of the resources behind a list of URNs. */
export const names = (urns: readonly string[]): string[] => urns.map((u) => u.split("::").pop()!).sort();

/** The guest (component name) that owns a resource, through the parent chain. */
export const ownerGuest = (rec: Recording, urn: string): number | undefined => {
    const byUrn = new Map(rec.registrations.map((r) => [r.urn, r]));
    for (let r = byUrn.get(urn); r; r = byUrn.get(r.parent)) {
        if (r.type.startsWith("phoenix:index:")) return Number(r.name);
    }
    return undefined;
};

export const inputs = (rec: Recording, name: string): any => unwrapSecrets(find(rec, name).inputs);

export const childrenOf = (rec: Recording, guest: number): Registration[] => {
    const comp = rec.registrations.find((r) => r.type.startsWith("phoenix:index:") && r.name === String(guest));
    return comp ? rec.registrations.filter((r) => r.parent === comp.urn) : [];
};

/**
 * A copy of the real catalog (`from`: guests, or guests-full) in a temp dir, with edits: file name -> new text, or a
 * function of the old text, or null to delete. Returns the catalog dir.
 */
export const catalogCopy = (edits: Record<string, string | null | ((old: string) => string)> = {}, from = "guests"): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-catalog-"));
    const guests = path.join(dir, "guests");
    fs.mkdirSync(guests);
    for (const f of fs.readdirSync(path.join(ROOT, from))) fs.copyFileSync(path.join(ROOT, from, f), path.join(guests, f));
    for (const [file, edit] of Object.entries(edits)) {
        const p = path.join(guests, file);
        if (edit === null) fs.rmSync(p);
        else fs.writeFileSync(p, typeof edit === "function" ? edit(fs.readFileSync(p, "utf8")) : edit);
    }
    return guests;
};

/**
 * A copy of the program (index.ts, components, catalog, features, the stack files and the guests) in a temp dir, with
 * edits: path relative to the project -> new text or a function of the old. node_modules is linked, so the copy shares
 * @pulumi/pulumi with the tests. Returns the directory: run its program with { program: path.join(dir, "index") }.
 */
export const projectCopy = (edits: Record<string, string | ((old: string) => string)> = {}): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-project-"));
    for (const entry of ["index.ts", "Pulumi.yaml", "Pulumi.dev.yaml", "components", "catalog", "features", "guests"]) {
        fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    for (const [file, edit] of Object.entries(edits)) {
        const p = path.join(dir, file);
        fs.writeFileSync(p, typeof edit === "function" ? edit(fs.readFileSync(p, "utf8")) : edit);
    }
    return dir;
};

/** A guest of the real catalog, resolved as the dev stack resolves it. */
export const devSpec = <S extends GuestSpec>(id: number): S => loadCatalog({ dir: "guests", node: "phoenix", baseDir: ROOT }).guests.get(id) as S;

/** Every string in a value that is not inside a secret. */
export const plainStrings = (v: unknown): string[] =>
    isSecretValue(v) ? [] : typeof v === "string" ? [v] : Array.isArray(v) ? v.flatMap(plainStrings) : v && typeof v === "object" ? Object.values(v).flatMap(plainStrings) : [];

/**
 * A guest's children are exactly `expected` (name -> [type, names it waits for]), each a child of the guest's component.
 * Everything on the machine also waits for it through replaceWith (program.spec checks that); the rest is compared.
 */
export const assertChildren = (rec: Recording, guest: string, componentType: string, expected: Record<string, [string, string[]]>): void => {
    const comp = find(rec, guest, componentType);
    const actual = childrenOf(rec, Number(guest));
    assert.deepEqual(actual.map((c) => c.name).sort(), Object.keys(expected).sort());
    for (const c of actual) {
        const [type, deps] = expected[c.name];
        assert.equal(c.type, type, c.name);
        assert.equal(c.parent, comp.urn, `${c.name} is a child of ${guest}`);
        const unbound = (urns: string[]) => urns.filter((u) => !c.replaceWith.includes(u));
        assert.deepEqual(names(unbound(c.dependencies)), names(unbound(deps.map((d) => urnOf(rec, d)))), `${c.name} dependencies`);
    }
};

/** Runs `npm run import-phoenix -- ARGS` in-process and captures what it prints. */
export const importCli = (...argv: string[]): { status: number; stdout: string; stderr: string } => {
    const out: string[] = [];
    const err: string[] = [];
    const { log, error } = console;
    console.log = (...a: unknown[]) => void out.push(a.join(" "));
    console.error = (...a: unknown[]) => void err.push(a.join(" "));
    try {
        const status = importMain(argv);
        return { status, stdout: out.join("\n"), stderr: err.join("\n") };
    } finally {
        console.log = log;
        console.error = error;
    }
};

/** The original's three configuration files, parsed (phoenix_lxc_configs.json, phoenix_vm_configs.json, phoenix_hypervisor_config.json). */
export interface OriginalFiles { lxc: any; vm: any; hv: any }

/** A copy of the original's files in `from` with edits to their parsed JSON; returns the copy's directory. */
export const editedOriginal = (from: string, edit: (files: OriginalFiles) => void): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-edited-"));
    const names = { lxc: "phoenix_lxc_configs.json", vm: "phoenix_vm_configs.json", hv: "phoenix_hypervisor_config.json" } as const;
    const files = Object.fromEntries(Object.entries(names).map(([k, f]) => [k, JSON.parse(fs.readFileSync(path.join(from, f), "utf8"))])) as OriginalFiles;
    edit(files);
    for (const [k, f] of Object.entries(names)) fs.writeFileSync(path.join(dir, f), JSON.stringify(files[k as keyof typeof names], null, 4));
    return dir;
};

/**
 * A throwaway catalog: the reference defaults.yaml plus the given guests (objects written as YAML files). Returns
 * the catalog dir, for recordDev({ "phoenix:catalog": dir, "phoenix:selectAll": true }).
 */
export const catalogOf = (guests: Record<string, unknown>[]): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-shape-"));
    fs.copyFileSync(path.join(ROOT, "guests", "defaults.yaml"), path.join(dir, "defaults.yaml"));
    for (const g of guests) fs.writeFileSync(path.join(dir, `${g.id}-${g.name}.yaml`), stringify(g));
    return dir;
};

/** Every resource a registration waits for, by name (explicit, input and replaceWith dependencies), sorted. */
export const depNames = (rec: Recording, name: string): string[] => names(find(rec, name).dependencies);
