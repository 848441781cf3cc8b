// The importer on the original's real configuration files: what it writes, what it reports, that it never writes a
// secret or overwrites a file unasked, and that the seven reference guests it imports plan like the hand-written
// guests/ (same waves, same steps, same resource inputs except the documented differences below).
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { isDeepStrictEqual } from "util";
import { loadCatalog } from "../catalog/load";
import { readinessWaves, resolveSelection } from "../catalog/graph";
import type { Recording } from "../plan/engine";
import { unwrapSecrets } from "../plan/engine";
import { importPhoenix } from "../tools/phoenix/importer";
import type { ImportResult } from "../tools/phoenix/model";
import { type OriginalFiles, ROOT, editedOriginal, importCli, recordDev } from "./helpers";

/** The original's files, committed as fixtures (CI has no ../shared); PHOENIX_REFERENCE_CONFIGS points elsewhere. */
const FIXTURES = path.join(ROOT, "test", "fixtures", "phoenix-configs");
const REFERENCE = process.env.PHOENIX_REFERENCE_CONFIGS ?? FIXTURES;
/** Where the fixtures were copied from, when this checkout has it beside it: the fixtures must not drift from it. */
const SHARED_REFERENCE = path.resolve(ROOT, "..", "shared", "reference", "phoenix-configs");
const SEVEN = [900, 103, 101, 102, 9000, 1001, 1002];
const EIGHT = [801, 802, 901, 910, 911, 912, 914, 917];

/**
 * Where the imported seven deliberately differ from the hand-written guests/ (README: importer, deliberate
 * differences). Each entry must occur, so a stale one fails too.
 */
const ALLOWED_DIFFERENCES: { resource: RegExp; path: string; why: string }[] = [
    { resource: /^\d+-(ct|vm)$/, path: "description", why: "the original has no description; the hand-written catalog describes each guest" },
];

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** Runs the CLI in-process and captures what it prints. */
const cli = importCli;

const readAll = (dir: string): Map<string, string> => new Map(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), "utf8")]));

type Json = any;

/** A copy of the reference files with edits to their parsed JSON (lxc: phoenix_lxc_configs.json, ...). */
const editedCopy = (edit: (files: OriginalFiles) => void): string => editedOriginal(REFERENCE, edit);

/** A clean failure: exit code 1, nothing on stdout, one line on stderr and no stack trace. */
const assertCleanFailure = (r: ReturnType<typeof cli>, message: RegExp): void => {
    assert.equal(r.status, 1, r.stdout);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, message);
    assert.ok(!r.stderr.includes("\n") && !/\bat .*:\d+:\d+/.test(r.stderr), `one line, no stack trace: ${r.stderr}`);
};

describe("the committed reference configuration (test/fixtures/phoenix-configs)", () => {
    it("equals ../shared/reference/phoenix-configs, where that directory exists", function () {
        if (!fs.existsSync(SHARED_REFERENCE)) this.skip();
        const list = (dir: string) => fs.readdirSync(dir).sort();
        assert.deepEqual(list(FIXTURES), list(SHARED_REFERENCE), "the same files");
        for (const f of list(SHARED_REFERENCE)) {
            assert.ok(fs.readFileSync(path.join(FIXTURES, f)).equals(fs.readFileSync(path.join(SHARED_REFERENCE, f))), `test/fixtures/phoenix-configs/${f} differs from ${SHARED_REFERENCE}/${f}: copy it again`);
        }
    });

    it("holds the three configuration files, with the one password redacted", () => {
        for (const f of ["phoenix_lxc_configs.json", "phoenix_vm_configs.json", "phoenix_hypervisor_config.json"]) assert.ok(fs.existsSync(path.join(FIXTURES, f)), f);
        const hv = JSON.parse(fs.readFileSync(path.join(FIXTURES, "phoenix_hypervisor_config.json"), "utf8"));
        assert.equal(hv.portainer_api.admin_password, "<redacted>");
        assert.equal(hv.users.password_hash, "NOT_SET");
    });
});

describe("import-phoenix on the original's configuration", () => {
    let out: string;
    let run: ReturnType<typeof cli>;
    let result: ImportResult;

    before(() => {
        assert.ok(fs.existsSync(path.join(REFERENCE, "phoenix_lxc_configs.json")), `reference configs not found at ${REFERENCE} (set PHOENIX_REFERENCE_CONFIGS)`);
        out = path.join(tmp("phoenix-import-"), "guests");
        run = cli("--from", REFERENCE, "--out", out);
        result = importPhoenix(REFERENCE);
    });

    it("writes <id>-<name>.yaml per guest plus defaults.yaml and the schemas, like guests/", () => {
        assert.equal(run.status, 0, run.stderr);
        const files = fs.readdirSync(out).sort();
        const guestFiles = files.filter((f) => /^\d+-.*\.yaml$/.test(f));
        assert.deepEqual(guestFiles.map((f) => Number(f.split("-")[0])).sort((a, b) => a - b), [...SEVEN, ...EIGHT].sort((a, b) => a - b));
        assert.ok(["defaults.yaml", "schema.json", "defaults.schema.json"].every((f) => files.includes(f)));
        for (const f of ["900-copy-base.yaml", "103-step-ca.yaml", "101-nginx-phoenix.yaml", "102-traefik-internal.yaml", "1001-portainer.yaml", "1002-drphoenix.yaml", "9000-ubuntu-2404-cloud-template.yaml", "802-granite-3-3-8b-fp8.yaml"]) {
            assert.ok(files.includes(f), f);
        }
        assert.equal(fs.readFileSync(path.join(out, "schema.json"), "utf8"), fs.readFileSync(path.join(ROOT, "guests", "schema.json"), "utf8"));
        for (const f of files.filter((f) => f.endsWith(".yaml"))) {
            const modeline = f === "defaults.yaml" ? "./defaults.schema.json" : "./schema.json";
            assert.equal(fs.readFileSync(path.join(out, f), "utf8").split("\n")[0], `# yaml-language-server: $schema=${modeline}`, f);
        }
    });

    it("reports the keys it drops, with the reason", () => {
        const guest = (id: number) => result.guests.find((g) => g.id === id)!;
        const dropped = (id: number) => guest(id).notes.filter((n) => n.kind === "dropped").map((n) => n.key);
        assert.ok(dropped(101).includes("mount_points[2]") && dropped(102).includes("mount_points[1]"), "103's CA directory is no longer mounted into 101 and 102");
        assert.match(guest(101).notes.find((n) => n.key === "mount_points[2]")!.detail, /\/103\/ssl .*trusted_ca with caFrom: 103/);
        for (const id of [1001, 1002]) assert.ok(dropped(id).includes("volumes[1]"), `${id}: the .step-ca staging share`);
        assert.ok(dropped(9000).includes("template_snapshot_name"));
        // The route portainer-agent is dropped (nothing on 1002 listens on 9001), and with it the rule admitting Traefik to it.
        assert.deepEqual(guest(1002).notes.filter((n) => n.kind === "dropped" && n.key === "firewall.rules").map((n) => n.detail), [
            `{"type":"in","action":"ACCEPT","source":"10.0.0.12","proto":"tcp","dport":"9001","comment":"Allow Traefik to access Portainer Agent for ACME challenge"}: ` +
                "it admitted Traefik on 9001 for the route portainer-agent, which is dropped",
        ]);
        for (const id of [1001, 1002]) assert.ok(dropped(id).includes("docker_stacks"));
        for (const g of result.guests.filter((g) => g.id < 1000 && g.id !== 911 && g.id !== 912)) assert.ok(dropped(g.id).includes("portainer_role"), `${g.id}`);
        assert.ok(result.globalNotes.some((n) => n.kind === "dropped" && n.key === "zfs" && /host setup/.test(n.detail)));
        // The text report carries the same, one line per note.
        assert.match(run.stdout, /^Container 101 Nginx-Phoenix -> 101-nginx-phoenix\.yaml$/m);
        assert.match(run.stdout, /^ {4}dropped {3}portainer_role: used only by `phoenix sync all`/m);
    });

    it("reports the values it changes and the hard-coded values it now states", () => {
        const keys = (id: number, kind: string) => result.guests.find((g) => g.id === id)!.notes.filter((n) => n.kind === kind).map((n) => n.key);
        assert.ok(keys(101, "changed").includes("swap_mb"), "the original ignored swap_mb");
        assert.ok(keys(101, "changed").includes("id_maps"));
        assert.ok(keys(103, "changed").includes("health_check"));
        assert.ok(keys(1002, "changed").includes("disk_size_gb"));
        assert.ok(keys(102, "changed").includes("bootstrap_ca_url"));
        assert.ok(keys(103, "added").includes("protect"));
        assert.ok(keys(1001, "added").includes("healthCheck"));
        // The checks the gateway's and Traefik's applications install: every route end to end, every route's certificate.
        const added = (id: number, key: string) => result.guests.find((g) => g.id === id)!.notes.filter((n) => n.kind === "added" && n.key === key).map((n) => n.detail);
        assert.match(added(101, "healthCheck")[0], /^\/usr\/local\/sbin\/phoenix-gateway-check: every route answers end to end through the gateway's :443/);
        assert.match(added(102, "healthCheck")[0], /^\/usr\/local\/sbin\/phoenix-traefik-check: Traefik serves a certificate from the internal CA for every route's host/);
        assert.match(added(101, "firewall.rules").at(-1)!, /"source":"10\.0\.0\.0\/24","proto":"tcp","dport":"80".*the original's gateway served the LAN on port 80/);
        for (const id of [900, 103, 101, 102]) assert.ok(keys(id, "changed").includes("firewall.enabled"), `${id}: the original's container firewall was inert`);
    });

    it("removes duplicate firewall rules and reports each one", () => {
        const duplicates = Object.fromEntries(result.guests.map((g) => [g.id, g.notes.filter((n) => n.kind === "duplicate").map((n) => n.key)]).filter(([, d]) => (d as string[]).length > 0));
        assert.deepEqual(duplicates, { 101: ["firewall.rules[3]"], 103: ["firewall.rules[2]", "firewall.rules[3]"], 1002: ["firewall.rules[2]"] });
        const catalog = loadCatalog({ dir: sevenCopy(out), node: "pve" });
        // 101 and 103 also get the rules the route check adds (LAN to the gateway; Portainer to the CA), 101 the LAN on
        // port 80 its original served (now redirected to https); 1002 loses the rule admitting Traefik to the dropped
        // route portainer-agent.
        assert.deepEqual([101, 103, 1002].map((id) => catalog.guests.get(id)!.firewall.rules.length), [8, 6, 4]);
        assert.match(run.stdout, /duplicate firewall\.rules\[3\]: out ACCEPT tcp to 10\.0\.0\.12 port 80 .*matches the same traffic as firewall\.rules\[2\]: removed/);
    });

    it("has a script for every feature of all fifteen guests: the catalog check finds no problem", () => {
        assert.deepEqual(result.guests.filter((g) => g.missingScripts.length > 0).map((g) => g.id), []);
        assert.equal(loadCatalog({ dir: out, node: "phoenix" }).guests.size, 15);
        assert.match(run.stdout, /^Catalog check: 15 guests load without problems\.$/m);
        assert.ok(!/no such script|have no script/.test(run.stdout));
    });

    it("never writes a secret: a password in the original reaches neither the files nor the report", () => {
        const from = tmp("phoenix-secret-from-");
        for (const f of fs.readdirSync(REFERENCE)) fs.copyFileSync(path.join(REFERENCE, f), path.join(from, f));
        const hvFile = path.join(from, "phoenix_hypervisor_config.json");
        const hv = JSON.parse(fs.readFileSync(hvFile, "utf8"));
        const planted = "Pl4nted-Adm1n-S3cret";
        hv.portainer_api.admin_password = planted;
        hv.users.password_hash = "$6$planted$hashvalue";
        fs.writeFileSync(hvFile, JSON.stringify(hv));
        const dir = path.join(tmp("phoenix-secret-out-"), "guests");
        const r = cli("--from", from, "--out", dir);
        assert.equal(r.status, 0, r.stderr);
        for (const [f, text] of readAll(dir)) assert.ok(!text.includes(planted) && !text.includes("$6$planted"), `${f} contains a secret`);
        assert.ok(!r.stdout.includes(planted) && !r.stdout.includes("$6$planted"));
        assert.match(r.stdout, /portainer_api\.admin_password: not imported: set it with pulumi config set --secret portainerAdminPassword/);
        // The last guard: a secret copied into any other value (here a rule comment) stops the import before writing.
        const lxcFile = path.join(from, "phoenix_lxc_configs.json");
        fs.writeFileSync(lxcFile, fs.readFileSync(lxcFile, "utf8").replace("Allow ICMP from internal network", `pw ${planted}`));
        const leak = path.join(tmp("phoenix-secret-leak-"), "guests");
        const blocked = cli("--from", from, "--out", leak);
        assert.equal(blocked.status, 1);
        assert.match(blocked.stderr, /refusing to write 900-copy-base\.yaml: it would contain a secret value/);
        assert.ok(!fs.existsSync(leak));
    });

    it("never writes a secret inside a copied value: an api_key in vllm_engine_config, a password in user_config", () => {
        const apiKey = "sk-planted-vllm-api-key-0123";
        const nestedToken = "hf_plantedNestedToken987";
        const vmPassword = "Pl4nted-VM-Passw0rd";
        const from = editedCopy(({ lxc, vm }) => {
            const engine = lxc.lxc_configs["801"].vllm_engine_config;
            engine.ServerConfig.api_key = apiKey;
            engine.ModelConfig.downloads = [{ repo: "ibm-granite/granite-embedding-english-r2", hf_token: nestedToken }];
            const v1001 = vm.vms.find((v: Json) => v.vmid === 1001);
            v1001.user_config.password = vmPassword;
            v1001.user_config.groups = ["docker"];
        });
        const dir = path.join(tmp("phoenix-copied-secret-"), "guests");
        const r = cli("--from", from, "--out", dir);
        assert.equal(r.status, 0, r.stderr);
        const json = cli("--from", from, "--out", dir, "--json");
        assert.equal(json.status, 0, json.stderr);
        for (const planted of [apiKey, nestedToken, vmPassword]) {
            for (const [f, text] of readAll(dir)) assert.ok(!text.includes(planted), `${f} contains ${planted}`);
            assert.ok(!r.stdout.includes(planted) && !json.stdout.includes(planted), `the report contains ${planted}`);
        }
        // The rest of the copied object is still there: as the vllm feature's parameters, the rest as extraArgs.
        const ct801 = fs.readFileSync(path.join(dir, "801-granite-embedding.yaml"), "utf8");
        assert.match(ct801, /^ {6}servedModelName: ibm-granite\/granite-embedding-english-r2$/m);
        assert.match(ct801, /^ {6}extraArgs: .*--downloads \[\{"repo":"ibm-granite\/granite-embedding-english-r2"\}\]/m);
        // The API key and the token are the vllm feature's secrets, by the stack config keys the notes name.
        assert.match(ct801, /^ {4}secrets:\n {6}HF_TOKEN: ct801HfToken\n {6}API_KEY: ct801ApiKey$/m);
        // A note per removed key, naming the stack secret to set instead.
        const notes = (id: number) => (JSON.parse(json.stdout).guests as Json[]).find((g) => g.id === id).notes as { kind: string; key: string; detail: string }[];
        const secrets = (id: number) => notes(id).filter((n) => n.kind === "secret");
        assert.deepEqual(secrets(801).map((n) => n.key).sort(), ["vllm_engine_config.ModelConfig.downloads[0].hf_token", "vllm_engine_config.ServerConfig.api_key"]);
        assert.equal(secrets(801).find((n) => n.key === "vllm_engine_config.ServerConfig.api_key")!.detail,
            "not imported: vllm_engine_config.ServerConfig.api_key; set it as a stack secret: pulumi config set --secret ct801ApiKey ...");
        assert.match(secrets(801).find((n) => n.key.endsWith("hf_token"))!.detail, /pulumi config set --secret ct801HfToken \.\.\.$/);
        assert.deepEqual(secrets(1001).map((n) => n.key), ["user_config.password"]);
        assert.match(secrets(1001)[0].detail, /^not imported: user_config\.password; set it as a stack secret: pulumi config set --secret vm1001Password \.\.\. \(cloudInit\.passwordSecret names it/);
        assert.ok(notes(1001).some((n) => n.kind === "dropped" && n.key === "user_config.groups" && /not mapped/.test(n.detail)), "every user_config key that is not mapped is reported");
        // The VM refers to the secret by its stack config key, and the catalog accepts that.
        assert.match(fs.readFileSync(path.join(dir, "1001-portainer.yaml"), "utf8"), /^cloudInit: \{ user: phoenix_user, passwordSecret: vm1001Password \}$/m);
        assert.match(r.stdout, /^Secrets \(never written to the catalog\):$/m);
        assert.match(r.stdout, /^ {4}801 vllm_engine_config\.ServerConfig\.api_key: not imported: .*ct801ApiKey/m);
        assert.match(r.stdout, /^ {4}1001 user_config\.password: not imported: .*vm1001Password/m);
        const catalog = loadCatalog({ dir: sevenCopy(dir), node: "pve" });
        assert.equal((catalog.guests.get(1001) as Json).cloudInit.passwordSecret, "vm1001Password");
        // A removed value that also appears in another copied value is still caught by the writer's guard.
        const echoed = editedCopy(({ lxc }) => {
            lxc.lxc_configs["801"].vllm_engine_config.ServerConfig.api_key = apiKey;
            lxc.lxc_configs["801"].health_check = { command: `curl -fsS -H 'Authorization: Bearer ${apiKey}' http://127.0.0.1:8000/health` };
        });
        const leak = path.join(tmp("phoenix-copied-leak-"), "guests");
        assertCleanFailure(cli("--from", echoed, "--out", leak), /^import-phoenix: refusing to write 801-granite-embedding\.yaml: it would contain a secret value/);
        assert.ok(!fs.existsSync(leak));
        // The key pattern is broad: a tokenizer naming the model and a token count are removed and reported too, but
        // their values (stated openly beside them, or a number) do not make the guard refuse the files.
        const broad = editedCopy(({ lxc }) => {
            const model = lxc.lxc_configs["801"].vllm_engine_config.ModelConfig;
            Object.assign(model, { tokenizer: model.model, max_num_batched_tokens: 1024 });
        });
        const broadDir = path.join(tmp("phoenix-broad-"), "guests");
        const b = cli("--from", broad, "--out", broadDir, "--json");
        assert.equal(b.status, 0, b.stderr);
        assert.deepEqual((JSON.parse(b.stdout).guests as Json[]).find((g) => g.id === 801).notes.filter((n: Json) => n.kind === "secret").map((n: Json) => n.key),
            ["vllm_engine_config.ModelConfig.tokenizer", "vllm_engine_config.ModelConfig.max_num_batched_tokens"]);
    });

    it("a short secret (a Portainer password `admin`) stops the import only where it is a whole value", () => {
        // The CA provisioner admin@thinkheads.ai contains "admin": that is not the password.
        const from = editedCopy(({ hv }) => {
            hv.portainer_api.admin_password = "admin";
        });
        const dir = path.join(tmp("phoenix-short-secret-"), "guests");
        const r = cli("--from", from, "--out", dir);
        assert.equal(r.status, 0, r.stderr);
        assert.match(fs.readFileSync(path.join(dir, "103-step-ca.yaml"), "utf8"), /caProvisioner: admin@thinkheads\.ai/);
        // The same value as a whole value (here a rule comment) is still refused.
        const whole = editedCopy(({ hv, lxc }) => {
            hv.portainer_api.admin_password = "admin";
            lxc.lxc_configs["900"].firewall.rules[0].comment = "admin";
        });
        const leak = path.join(tmp("phoenix-short-leak-"), "guests");
        assertCleanFailure(cli("--from", whole, "--out", leak), /^import-phoenix: refusing to write 900-copy-base\.yaml: it would contain a secret value/);
    });

    it("refuses to overwrite a changed file unless --force; identical files are left alone", () => {
        const dir = path.join(tmp("phoenix-overwrite-"), "guests");
        assert.equal(cli("--from", REFERENCE, "--out", dir).status, 0);
        const again = cli("--from", REFERENCE, "--out", dir);
        assert.equal(again.status, 0, "an identical re-import changes nothing");
        assert.match(again.stdout, /^ {2}written: none$/m);
        const file = path.join(dir, "103-step-ca.yaml");
        fs.writeFileSync(file, "# edited by hand\n");
        const refused = cli("--from", REFERENCE, "--out", dir);
        assert.equal(refused.status, 1);
        assert.equal(refused.stderr, `import-phoenix: refusing to overwrite 1 existing file in ${dir} (use --force): 103-step-ca.yaml`);
        assert.equal(fs.readFileSync(file, "utf8"), "# edited by hand\n");
        const forced = cli("--from", REFERENCE, "--out", dir, "--force");
        assert.equal(forced.status, 0);
        assert.match(forced.stdout, /^ {2}written: 103-step-ca\.yaml$/m);
        assert.match(fs.readFileSync(file, "utf8"), /^kind: lxc$/m);
    });

    it("replaces a guest's existing file of another name instead of adding a second file for its ID", () => {
        const dir = path.join(tmp("phoenix-rename-"), "guests");
        fs.mkdirSync(dir);
        fs.copyFileSync(path.join(ROOT, "guests", "9000-ubuntu-cloud-template.yaml"), path.join(dir, "9000-ubuntu-cloud-template.yaml"));
        const refused = cli("--from", REFERENCE, "--out", dir);
        assert.equal(refused.status, 1);
        assert.match(refused.stderr, /refusing to overwrite 1 existing file .*: 9000-ubuntu-cloud-template\.yaml$/);
        assert.equal(cli("--from", REFERENCE, "--out", dir, "--force").status, 0);
        assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith("9000-")), ["9000-ubuntu-cloud-template.yaml"]);
        assert.match(fs.readFileSync(path.join(dir, "9000-ubuntu-cloud-template.yaml"), "utf8"), /imported from phoenix_vm_configs\.json vms\[vmid=9000\]/);
    });

    it("bad arguments and bad input end with a clear message, not a stack trace", () => {
        assert.deepEqual(cli("--out", "x"), { status: 1, stdout: "", stderr: "import-phoenix: --from and --out are required\nusage: npm run import-phoenix -- --from <dir with phoenix_*.json> --out <catalog dir> [--node <name>] [--force] [--json]" });
        const empty = tmp("phoenix-empty-");
        assert.match(cli("--from", empty, "--out", path.join(empty, "o")).stderr, /^import-phoenix: no phoenix_lxc_configs\.json in .*; --from must name the original's etc\/ directory/);
        fs.writeFileSync(path.join(empty, "phoenix_lxc_configs.json"), "{ not json");
        fs.writeFileSync(path.join(empty, "phoenix_vm_configs.json"), "{}");
        fs.writeFileSync(path.join(empty, "phoenix_hypervisor_config.json"), "{}");
        assert.match(cli("--from", empty, "--out", path.join(empty, "o")).stderr, /^import-phoenix: phoenix_lxc_configs\.json: not valid JSON/);
    });

    it("file system errors end with one line and exit code 1, not a stack trace", () => {
        const base = tmp("phoenix-fs-");
        const file = path.join(base, "a-file");
        fs.writeFileSync(file, "not a directory\n");
        assertCleanFailure(cli("--from", REFERENCE, "--out", file), new RegExp(`^import-phoenix: --out ${file}: exists and is not a directory$`));
        assertCleanFailure(cli("--from", REFERENCE, "--out", path.join(file, "guests")),
            /^import-phoenix: cannot create directory .*\/a-file\/guests: a component of the path is not a directory \(ENOTDIR\)$/);
        assert.equal(fs.readFileSync(file, "utf8"), "not a directory\n");
        // An input file that is a directory; an output file that is a directory.
        const from = tmp("phoenix-fs-from-");
        for (const f of ["phoenix_lxc_configs.json", "phoenix_hypervisor_config.json"]) fs.copyFileSync(path.join(REFERENCE, f), path.join(from, f));
        fs.mkdirSync(path.join(from, "phoenix_vm_configs.json"));
        assertCleanFailure(cli("--from", from, "--out", path.join(base, "o")), /^import-phoenix: cannot read .*\/phoenix_vm_configs\.json: is a directory \(EISDIR\)$/);
        const out = path.join(base, "guests");
        fs.mkdirSync(path.join(out, "103-step-ca.yaml"), { recursive: true });
        assertCleanFailure(cli("--from", REFERENCE, "--out", out), /^import-phoenix: cannot read .*\/guests\/103-step-ca\.yaml: is a directory \(EISDIR\)$/);
    });

    it("reports list values that are not lists (firewall rules, mounts, options) instead of ignoring them", () => {
        const from = editedCopy(({ lxc, vm }) => {
            const ct101 = lxc.lxc_configs["101"];
            ct101.firewall.rules = { type: "in", action: "ACCEPT", proto: "tcp", port: "443" };
            ct101.mount_points = "/mnt/somewhere";
            vm.vms.find((v: Json) => v.vmid === 1002).firewall.rules = "ACCEPT all";
        });
        const r = importPhoenix(from);
        const dropped = (id: number) => r.guests.find((g) => g.id === id)!.notes.filter((n) => n.kind === "dropped");
        assert.deepEqual(dropped(101).filter((n) => n.key === "firewall.rules").map((n) => n.detail), ["not a list (an object): nothing imported from it"]);
        assert.deepEqual(dropped(101).filter((n) => n.key === "mount_points").map((n) => n.detail), ["not a list (a string): nothing imported from it"]);
        assert.deepEqual(dropped(1002).filter((n) => n.key === "firewall.rules").map((n) => n.detail), ["not a list (a string): nothing imported from it"]);
        // Nothing of the original's; only what the route check needs for the gateway's hops, and the LAN on port 80.
        assert.deepEqual(((r.guests.find((g) => g.id === 101)!.guest.firewall as Json).rules as Json[]).map((x) => x.comment), [
            "LAN clients reach the gateway",
            "the CA validates nginx_gateway's ACME http-01 challenge on 101",
            "LAN clients are redirected to https",
        ]);
        // The reference files have no such values: none of these notes there.
        assert.ok(!result.guests.some((g) => g.notes.some((n) => /^not a list/.test(n.detail))));
    });

    it("--json prints the report as data", () => {
        const dir = path.join(tmp("phoenix-json-"), "guests");
        const r = cli("--from", REFERENCE, "--out", dir, "--json");
        const report = JSON.parse(r.stdout);
        assert.equal(report.guests.length, 15);
        assert.deepEqual(report.guests.find((g: any) => g.id === 103).notes.filter((n: any) => n.kind === "duplicate").length, 2);
    });
});

/** A copy of an import with only the seven reference guests (to compare with the hand-written guests/). */
const sevenCopy = (importDir: string): string => {
    const dir = path.join(tmp("phoenix-seven-"), "guests");
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(importDir)) {
        const id = /^(\d+)-/.exec(f)?.[1];
        if (!id || SEVEN.includes(Number(id))) fs.copyFileSync(path.join(importDir, f), path.join(dir, f));
    }
    return dir;
};

/** Every path where two values differ: "rules.2.comment". */
const differences = (a: unknown, b: unknown, at = ""): string[] => {
    if (isDeepStrictEqual(a, b)) return [];
    if (a && b && typeof a === "object" && typeof b === "object") {
        return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) => differences((a as any)[k], (b as any)[k], at ? `${at}.${k}` : k));
    }
    return [at];
};

const byName = (rec: Recording) => new Map(rec.registrations.map((r) => [r.name, r]));
const short = (urns: string[]) => urns.map((u) => u.split("::").pop()!).sort();

describe("the imported reference guests plan like the hand-written catalog", () => {
    let seven: string;
    let hand: Recording;
    let imported: Recording;

    before(async () => {
        const out = path.join(tmp("phoenix-import-"), "guests");
        assert.equal(cli("--from", REFERENCE, "--out", out).status, 0);
        seven = sevenCopy(out);
        hand = await recordDev();
        imported = await recordDev({ "phoenix:catalog": seven });
        assert.equal(hand.error, undefined);
        assert.equal(imported.error, undefined, imported.error?.message);
    });

    it("same readiness waves for the dev selection", () => {
        const waves = (dir: string) => {
            const c = loadCatalog({ dir, node: "pve" });
            return readinessWaves(c.graph, resolveSelection(c.graph, SEVEN).selected);
        };
        assert.deepEqual(waves(seven), waves("guests"));
        assert.ok(waves("guests").length >= 3);
    });

    it("same steps per guest (the same resources, parents and dependencies)", () => {
        const h = byName(hand);
        const i = byName(imported);
        assert.deepEqual([...i.keys()].sort(), [...h.keys()].sort());
        assert.ok(h.has("103-feature-step_ca") && h.has("101-app") && h.has("1001-health"), "the recording has the provisioning chains");
        for (const [name, r] of h) {
            const o = i.get(name)!;
            assert.equal(o.type, r.type, name);
            assert.equal(o.parent, r.parent, name);
            assert.deepEqual(short(o.dependencies), short(r.dependencies), `${name} dependencies`);
            assert.deepEqual([o.protect, o.deleteBeforeReplace], [r.protect, r.deleteBeforeReplace], name);
        }
    });

    it("same resource inputs, except the documented differences (each of which occurs)", () => {
        const i = byName(imported);
        const seen = new Set<number>();
        const unexpected: string[] = [];
        for (const r of hand.registrations) {
            for (const p of differences(unwrapSecrets(r.inputs), unwrapSecrets(i.get(r.name)!.inputs))) {
                const allowed = ALLOWED_DIFFERENCES.findIndex((d) => d.resource.test(r.name) && d.path === p);
                if (allowed >= 0) seen.add(allowed);
                else unexpected.push(`${r.name}: ${p}`);
            }
        }
        assert.deepEqual(unexpected, []);
        assert.deepEqual([...seen].sort(), ALLOWED_DIFFERENCES.map((_, k) => k), "an allowed difference that no longer occurs: remove it");
    });

    it("the resolved catalogs agree guest by guest (steps, parameters, secrets, data sources)", () => {
        const a = loadCatalog({ dir: "guests", node: "pve" });
        const b = loadCatalog({ dir: seven, node: "pve" });
        for (const id of SEVEN) {
            const strip = (g: any) => ({ ...g, file: undefined, description: undefined, configKeys: g.configKeys.map((c: any) => c.key), firewall: { ...g.firewall, rules: g.firewall.rules.map((r: any) => ({ ...r, comment: undefined })) } });
            assert.deepEqual(strip(b.guests.get(id)), strip(a.guests.get(id)), `guest ${id}`);
        }
    });
});
