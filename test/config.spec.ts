// Stack config: the key table (components/configKeys.ts), Pulumi.yaml and every stack file under the Pulumi CLI's
// rules (emulated in plan/stackFile.ts after pulumi/pulumi's pkg/workspace/config.go), README's table, the checks of
// the keys the CLI no longer asks for, and the values that reach a node, all before anything is registered.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_KEYS, configTable, declaredInProject, projectDeclaration } from "../components/configKeys";
import { type Recording, recordProgram } from "../plan/engine";
import { main as planMain } from "../plan/cli";
import { runConfig } from "../plan/plan";
import { parse } from "yaml";
import { namedConfigKeys } from "../catalog/load";
import { type ProjectFile, catalogSecretKeys, cliConfigProblems, mayNameConfigKeys, projectFileProblems, readProjectFile, readStackConfig } from "../plan/stackFile";
import { ROOT, catalogCopy, devConfig, recordDev } from "./helpers";

const project = (config: ProjectFile["config"]): ProjectFile => ({ name: "phoenix", config });
const ENCRYPTED = { secure: "v1:AAAA" };

/** The dev stack as a cluster: phoenix:nodes instead of the one-node keys (as cluster.spec.ts does). */
const recordCluster = (config: Record<string, unknown>) => {
    const { config: base, secretKeys } = devConfig(config);
    delete base["phoenix:nodeAddress"];
    return recordProgram({ config: base, secretKeys });
};

/** The dev stack's config without some keys, recorded. */
const recordDevWithout = (keys: string[], overrides: Record<string, unknown> = {}) => {
    const { config, secretKeys } = devConfig(overrides);
    for (const k of keys) delete config[`phoenix:${k}`];
    return recordProgram({ config, secretKeys });
};

/** Each config is refused with exactly its message, as a RunError, before anything is registered. */
const assertRefused = async (record: (config: Record<string, unknown>) => Promise<Recording>, cases: [Record<string, unknown>, string][]): Promise<void> => {
    for (const [config, message] of cases) {
        const rec = await record(config);
        assert.ok(rec.error instanceof pulumi.RunError, `${JSON.stringify(config)}: ${rec.error}`);
        assert.equal(rec.error.message, message);
        assert.equal(rec.registrations.length, 0, "nothing registered");
    }
};

/** An OpenSSH public key line of `type` whose blob is well formed (type string, then the key's bytes). */
const keyLine = (type: string, comment = "root@pve"): string => {
    const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    return `${type} ${Buffer.concat([field(Buffer.from(type)), field(Buffer.alloc(32, 7))]).toString("base64")} ${comment}`;
};

describe("stack config: the key table, Pulumi.yaml and the Pulumi CLI's rules", () => {
    it("Pulumi.yaml declares exactly the table's keys every stack sets and the optional non-secret keys with a default, as the table says", () => {
        const declared = readProjectFile(ROOT).config;
        assert.deepEqual(declared, Object.fromEntries(CONFIG_KEYS.filter(declaredInProject).map((s) => [s.key, projectDeclaration(s)])));
        assert.deepEqual(Object.keys(declared).filter((k) => declared[k].default === undefined).sort(), ["endpoint", "sshPrivateKey"], "only what every stack sets has no default");
        assert.deepEqual(Object.keys(declared).filter((k) => declared[k].secret && declared[k].default !== undefined), [], "a secret never has a plain default");
        assert.deepEqual(projectFileProblems(readProjectFile(ROOT)), [], "the CLI's project checks (project.go Validate) pass");
    });

    it("every stack file in the repository passes the CLI's checks once the user has set the declared secrets", () => {
        const stacks = fs.readdirSync(ROOT).map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1]).filter((s): s is string => s !== undefined).sort();
        assert.deepEqual(stacks, ["cluster", "dev", "full"]);
        for (const stack of stacks) assert.deepEqual(readStackConfig(stack).cliProblems, [], `Pulumi.${stack}.yaml`);
    });

    it("the emulated CLI refuses what the CLI refuses, with its messages (pulumi pkg/workspace/config.go)", () => {
        const required = project({ a: { type: "string" }, b: { type: "integer" }, c: { type: "string", default: "x" }, "other:d": { value: "1" } });
        assert.deepEqual(cliConfigProblems("dev", required, {}), ["Stack 'dev' is missing configuration values 'a' and 'b'"]);
        assert.deepEqual(cliConfigProblems("dev", project({ ...required.config, z: {} }), {}), ["Stack 'dev' is missing configuration values 'a', 'b' and 'z'"]);
        assert.deepEqual(cliConfigProblems("dev", required, { "phoenix:a": "v" }), ["Stack 'dev' is missing configuration value 'b'"]);
        // Set values are type-checked as the CLI holds them: scalars as text, lists and maps as data.
        assert.deepEqual(cliConfigProblems("dev", required, { "phoenix:a": "v", "phoenix:b": "22" }), []);
        assert.deepEqual(cliConfigProblems("dev", required, { "phoenix:a": "v", "phoenix:b": "x" }), ["Stack 'dev' with configuration key 'b' must be of type 'integer'"]);
        const list = project({ ids: { type: "array", items: { type: "integer" }, default: [] } });
        assert.deepEqual(cliConfigProblems("dev", list, { "phoenix:ids": [101, "x"] }), ["Stack 'dev' with configuration key 'ids' must be of type 'array<integer>'"]);
        assert.deepEqual(cliConfigProblems("dev", list, { "phoenix:ids": [101, "102"] }), [], "an item that parses as an integer is one (project.go ValidateConfigValue)");
        assert.deepEqual(cliConfigProblems("dev", list, { "phoenix:ids": 101 }), ["Stack 'dev' with configuration key 'ids' must be of type 'array<integer>'"]);
        assert.deepEqual(cliConfigProblems("dev", list, {}), [], "the default [] is an array<integer>");
        // Secrets: encrypted (a list holding an encrypted item counts), never a plain value or default.
        const secret = project({ key: { type: "string", secret: true }, keys: { type: "array", items: { type: "string" }, secret: true, default: ["k"] } });
        assert.deepEqual(cliConfigProblems("dev", secret, { "phoenix:key": "plain", "phoenix:keys": [ENCRYPTED] }), ["Stack 'dev' with configuration key 'key' must be encrypted as it's secret"]);
        assert.deepEqual(cliConfigProblems("dev", secret, { "phoenix:key": ENCRYPTED }), ["Stack 'dev' with configuration key 'keys' must be encrypted as it's secret"], "a plain default");
        assert.deepEqual(cliConfigProblems("dev", secret, {}, ["key", "keys"]), [], "set with pulumi config set --secret");
        // Keys the project does not declare are accepted.
        assert.deepEqual(cliConfigProblems("dev", required, { "phoenix:a": "v", "phoenix:b": 1, "phoenix:stepCaPassword": ENCRYPTED, "phoenix:guests": [1] }), []);
    });

    it("the Pulumi.yaml this replaces stopped the dev stack before the program ran, whatever secrets were set", () => {
        // Its declarations (main c43c0a4) of the keys without a default that a stack may well not set.
        const before = project({
            endpoint: { type: "string" },
            nodeHostKey: { type: "string" },
            allowReplace: { type: "array", items: { type: "integer" } },
            apiToken: { type: "string", secret: true },
            password: { type: "string", secret: true },
            guestSshPrivateKey: { type: "string", secret: true },
        });
        const devValues = { "phoenix:endpoint": "https://10.0.0.13:8006/", "phoenix:auth": "password" };
        assert.deepEqual(cliConfigProblems("dev", before, devValues, ["password"]), ["Stack 'dev' is missing configuration values 'allowReplace', 'apiToken', 'guestSshPrivateKey' and 'nodeHostKey'"]);
    });

    it("the CLI's project checks: an array names its items, a default has the declared type, types are the CLI's", () => {
        assert.deepEqual(projectFileProblems(project({
            a: { type: "array" },
            b: { type: "integer", default: "many" },
            c: { type: "map" },
            d: { type: "string", default: "x", value: "y" },
            "aws:region": { type: "string", value: "x" },
        })), [
            "The configuration key 'a' declares an array but does not specify the underlying type via the 'items' attribute",
            "The default value specified for configuration key 'b' is not of the expected type 'integer'",
            "configuration key 'c': type must be one of string, integer, boolean, array, object",
            "project config 'd' cannot have both a 'default' and 'value' attribute",
            "Configuration key 'aws:region' is not namespaced by the project and should not define a type",
        ]);
    });

    it("a stack file the CLI would refuse is reported by the offline plan's reader, and its encrypted values are never read", () => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-stack-"));
        fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(root, "Pulumi.yaml"));
        fs.writeFileSync(path.join(root, "Pulumi.bad.yaml"), "config:\n  phoenix:guests: [101]\n  phoenix:sshPort: twenty-two\n  phoenix:extraToken:\n    secure: v1:c2VjcmV0\n");
        const sc = readStackConfig("bad", root);
        assert.deepEqual(sc.cliProblems, ["Stack 'bad' is missing configuration value 'endpoint'"]);
        fs.writeFileSync(path.join(root, "Pulumi.bad.yaml"), "config:\n  phoenix:endpoint: https://pve:8006/\n  phoenix:sshPort: twenty-two\n  phoenix:extraToken:\n    secure: v1:c2VjcmV0\n");
        const typed = readStackConfig("bad", root);
        assert.deepEqual(typed.cliProblems, ["Stack 'bad' with configuration key 'sshPort' must be of type 'integer'"]);
        assert.equal(typed.config["phoenix:extraToken"], "[secret phoenix:extraToken]", "an encrypted value gets a placeholder");
        assert.ok(typed.secretKeys.includes("phoenix:extraToken"));
    });

    it("npm run plan refuses a stack file the CLI would refuse, with the CLI's message, before running the program", async () => {
        const file = path.join(ROOT, "Pulumi.zz-cli-check.yaml");
        fs.writeFileSync(file, "config:\n  phoenix:guests: [101]\n  phoenix:node: phoenix\n  phoenix:nodeAddress: 10.0.0.13\n");
        try {
            const err: string[] = [];
            const code = await planMain(["--stack", "zz-cli-check", "--mermaid"], { out: () => undefined, err: (t) => void err.push(t) });
            assert.equal(code, 1);
            assert.equal(err.join(""), "error: pulumi up would stop before the program runs:\nStack 'zz-cli-check' is missing configuration value 'endpoint'\n" +
                "(set the keys in Pulumi.zz-cli-check.yaml, secrets with pulumi config set --secret; Pulumi.yaml declares only what every stack sets: components/configKeys.ts)\n");
        } finally {
            fs.rmSync(file);
        }
    });

    it("the offline plan gives every secret the program may read a placeholder: the table's and the ones the catalog names", () => {
        const sc = readStackConfig("dev");
        for (const spec of CONFIG_KEYS.filter((s) => s.secret)) {
            assert.ok(sc.secretKeys.includes(`phoenix:${spec.key}`), spec.key);
            assert.deepEqual(sc.config[`phoenix:${spec.key}`], spec.type.endsWith("[]") ? [`[secret ${spec.key}]`] : `[secret ${spec.key}]`);
        }
        for (const key of ["stepCaPassword", "stepCaProvisionerPassword", "portainerAdminPassword"]) {
            assert.equal(sc.config[`phoenix:${key}`], `[secret ${key}]`, key);
            assert.ok(sc.secretKeys.includes(`phoenix:${key}`), key);
        }
        // --catalog another catalog: the secrets it names get placeholders too; a key the run unsets stays unset.
        const dir = catalogCopy({ "103-step-ca.yaml": (t) => t.replace("CA_PASSWORD: stepCaPassword", "CA_PASSWORD: labCaPassword") });
        const run = runConfig({ catalog: dir, config: { portainerAdminPassword: null } });
        assert.equal(run.config["phoenix:labCaPassword"], "[secret labCaPassword]");
        assert.ok(run.secretKeys.includes("phoenix:labCaPassword"));
        assert.ok(!("phoenix:portainerAdminPassword" in run.config), "unset by the run");
    });

    it("the catalog's secret keys are found without parsing files that cannot name one, however YAML spells the field", () => {
        // Every spelling of a `secrets` map or `passwordSecret` that YAML allows: each must still be parsed and found.
        const spellings: Record<string, string> = {
            plain: "kind: lxc\nfeatures:\n  - name: x\n    secrets:\n      A: keyPlain\n",
            quoted: "kind: lxc\napplication: { script: a.sh, 'secrets': { A: keyQuoted } }\n",
            explicit: "kind: lxc\napplication:\n  ? secrets\n  : { A: keyExplicit }\n",
            alias: "kind: lxc\nx: &s { A: keyAlias }\napplication: { secrets: *s }\n",
            escaped: 'kind: lxc\napplication: { "secr\\x65ts": { A: keyEscaped } }\n',
            password: "kind: vm\ncloudInit: { \"passwordSecret\": keyPassword }\n",
            binary: "kind: lxc\napplication:\n  script: a.sh\n  ? !!binary c2VjcmV0cw==\n  : { A: keyBinary }\n",
            binaryPassword: "kind: vm\ncloudInit:\n  ? !!binary cGFzc3dvcmRTZWNyZXQ=\n  : keyBinaryPassword\n",
            tagDirective: "%TAG !t! tag:yaml.org,2002:bin\n---\nkind: lxc\napplication:\n  ? !t!ary c2VjcmV0cw==\n  : { A: keyTagged }\n",
            none: "kind: lxc\nname: secretless\nfeatures: [base_setup]\n",
        };
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-secret-keys-"));
        try {
            for (const [name, text] of Object.entries(spellings)) fs.writeFileSync(path.join(dir, `${name}.yaml`), text);
            // A binary key is a Buffer to the yaml package, which warns as it turns it into a string key.
            const emitWarning = process.emitWarning;
            process.emitWarning = () => {};
            let found: string[];
            try {
                found = catalogSecretKeys(dir);
            } finally {
                process.emitWarning = emitWarning;
            }
            assert.deepEqual(found.sort(), ["keyAlias", "keyBinary", "keyBinaryPassword", "keyEscaped", "keyExplicit", "keyPassword", "keyPlain", "keyQuoted", "keyTagged"]);
            assert.equal(mayNameConfigKeys(spellings.none), false, "a file without the field is not parsed");
            // The filter passes every file of the shipped catalogs that names a key.
            for (const catalog of [path.join(ROOT, "guests"), path.join(ROOT, "test/fixtures/everything")]) {
                for (const f of fs.readdirSync(catalog).filter((x) => x.endsWith(".yaml"))) {
                    const text = fs.readFileSync(path.join(catalog, f), "utf8");
                    if (namedConfigKeys(parse(text)).length > 0) assert.ok(mayNameConfigKeys(text), f);
                }
            }
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("README's configuration table is the key table", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const m = /<!-- config-keys:begin[^\n]*-->\n([\s\S]*?)\n<!-- config-keys:end -->/.exec(readme);
        assert.ok(m, "README has the config-keys markers");
        assert.equal(m[1], configTable());
    });

    it("every key the program reads is in the table, and every key in the table is read", () => {
        const reads = new Set<string>();
        for (const f of fs.readdirSync(path.join(ROOT, "components")).filter((x) => x.endsWith(".ts"))) {
            const text = fs.readFileSync(path.join(ROOT, "components", f), "utf8");
            for (const m of text.matchAll(/\bcfg\.(?:get|require)\w*(?:<[^>]*>)?\("([A-Za-z]+)"|requireKey\(cfg, "([A-Za-z]+)"/g)) reads.add(m[1] ?? m[2]);
        }
        assert.deepEqual([...reads].sort(), CONFIG_KEYS.map((s) => s.key).sort());
    });
});

describe("stack config: the keys the CLI does not ask for are checked before anything is registered", () => {
    it("reports every missing stack secret and catalog-named secret at once, with when it is required and how to set it (as README shows)", async () => {
        const rec = await recordDevWithout(["password", "stepCaPassword"]);
        assert.ok(rec.error instanceof pulumi.RunError, String(rec.error));
        assert.equal(rec.registrations.length, 0);
        const expected = [
            "The stack config lacks 2 values this stack needs (nothing was registered):",
            "stack config phoenix:password is not set; required when phoenix:auth is password; fix: pulumi config set --secret password <value>",
            "guests/103-step-ca.yaml:33:20 features[1].secrets.CA_PASSWORD: guest 103 reads the secret stack config key phoenix:stepCaPassword, which is not set; fix: pulumi config set --secret stepCaPassword <value>",
        ];
        assert.deepEqual(rec.error.message.split("\n"), expected);
        assert.ok(fs.readFileSync(path.join(ROOT, "README.md"), "utf8").includes(`\`\`\`\n${expected.join("\n")}\n\`\`\``), "README shows this message");
        const token = await recordDevWithout(["sshPrivateKey", "apiToken"], { "phoenix:auth": "token", "phoenix:guests": [9000] });
        assert.deepEqual(token.error?.message.split("\n"), [
            "The stack config lacks 2 values this stack needs (nothing was registered):",
            "stack config phoenix:sshPrivateKey is not set; every stack needs it; fix: pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519",
            "stack config phoenix:apiToken is not set; required when phoenix:auth is token; fix: pulumi config set --secret apiToken <value>",
        ]);
        assert.equal(token.registrations.length, 0);
    });

    it("a one-node stack without its node or address, or a stack without guests, says when the key is required", async () => {
        await assertRefused((c) => recordDevWithout(c.without as string[]), [
            [{ without: ["node"] }, "stack config phoenix:node is not set; required when phoenix:nodes is not set, or lists more than one node; fix: pulumi config set node <value>"],
            [{ without: ["nodeAddress"] }, "stack config phoenix:nodeAddress is not set; required when phoenix:nodes is not set (a one-node stack); fix: pulumi config set nodeAddress <value>"],
            [{ without: ["guests"] }, "stack config phoenix:guests is not set; required when phoenix:selectAll is not true; fix: pulumi config set --path 'guests[0]' 103"],
        ]);
    });
});

describe("stack config: node names, addresses, ports, users and host keys are checked before registration", () => {
    const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";

    it("one-node keys: each refusal names the key and what was expected; nothing is registered", async () => {
        const cases: [Record<string, unknown>, string][] = [
            [{ "phoenix:node": "pve_1" }, 'stack config phoenix:node: expected a Proxmox node name (letters, digits and inner hyphens, at most 63 characters), received "pve_1"'],
            [{ "phoenix:nodeAddress": "10.0.0.13; reboot" }, 'stack config phoenix:nodeAddress: expected an IP address or a DNS name (letters, digits, inner hyphens and dots), received "10.0.0.13; reboot"'],
            [{ "phoenix:nodeAddress": "10.0.0.999" }, 'stack config phoenix:nodeAddress: expected an IP address or a DNS name (letters, digits, inner hyphens and dots), received "10.0.0.999"'],
            [{ "phoenix:sshPort": "0" }, 'stack config phoenix:sshPort: expected a port 1..65535, received "0"'],
            [{ "phoenix:sshPort": "65536" }, 'stack config phoenix:sshPort: expected a port 1..65535, received "65536"'],
            [{ "phoenix:sshUser": "Root Admin" }, 'stack config phoenix:sshUser: expected an SSH user name (lower-case letters, digits, _ and -, at most 32 characters), received "Root Admin"'],
            [{ "phoenix:endpoint": "https://pve.lan:99999/" }, 'stack config phoenix:endpoint: expected the API URL without path, e.g. https://pve.lan:8006/, with a port 1..65535, received "https://pve.lan:99999/"'],
        ];
        await assertRefused(recordDev, cases);
    });

    it("a host key is one public key line whose blob is of its type; a value that is none is described, never shown", async () => {
        const rsaBlob = keyLine("ssh-rsa").split(" ")[1];
        const cases: [unknown, string][] = [
            [PRIVATE_KEY, `expected one public key line "<type> <base64> [comment]", such as the node's /etc/ssh/ssh_host_ed25519_key.pub, received a text of ${PRIVATE_KEY.length} characters (not shown: what is here may be a private key pasted by mistake)`],
            [`ssh-ed25519 ${rsaBlob}`, `expected one public key line "<type> <base64> [comment]", such as the node's /etc/ssh/ssh_host_ed25519_key.pub; its base64 part is not a ssh-ed25519 key (copied incompletely?), received a text of ${`ssh-ed25519 ${rsaBlob}`.length} characters (not shown: what is here may be a private key pasted by mistake)`],
            ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPve2HostKey", `expected one public key line "<type> <base64> [comment]", such as the node's /etc/ssh/ssh_host_ed25519_key.pub; its base64 part is not a ssh-ed25519 key (copied incompletely?), received a text of 48 characters (not shown: what is here may be a private key pasted by mistake)`],
            ["ssh-foo AAAA", `expected one public key line "<type> <base64> [comment]", such as the node's /etc/ssh/ssh_host_ed25519_key.pub; key types: ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, ssh-dss, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com, received a text of 12 characters (not shown: what is here may be a private key pasted by mistake)`],
        ];
        for (const [hostKey, expected] of cases) {
            const rec = await recordDev({ "phoenix:nodeHostKey": hostKey });
            assert.equal(rec.error?.message, `stack config phoenix:nodeHostKey: ${expected}`);
            assert.ok(!rec.error.message.includes("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ") && !rec.error.message.includes(rsaBlob), "the value is not echoed");
            assert.equal(rec.registrations.length, 0);
        }
        const good = await recordDev({ "phoenix:nodeHostKey": keyLine("ssh-ed25519"), "phoenix:guests": [900] });
        assert.equal(good.error, undefined, good.error?.message);
    });

    it("phoenix:nodes entries: the node's address, port, user and host key, at their keys", async () => {
        const cases: [Record<string, unknown>, string][] = [
            [{ pve2: { address: "" } }, 'stack config phoenix:nodes.pve2.address: expected an IP address or a DNS name (letters, digits, inner hyphens and dots), received ""'],
            [{ pve2: { address: "10.0.0.14", port: 0 } }, "stack config phoenix:nodes.pve2.port: expected a port 1..65535, received 0"],
            [{ pve2: { address: "10.0.0.14", user: "root\nreboot" } }, 'stack config phoenix:nodes.pve2.user: expected an SSH user name (lower-case letters, digits, _ and -, at most 32 characters), received "root\\nreboot"'],
            [{ pve2: { address: "10.0.0.14", hostKey: PRIVATE_KEY } }, `stack config phoenix:nodes.pve2.hostKey: expected one public key line "<type> <base64> [comment]", such as the node's /etc/ssh/ssh_host_ed25519_key.pub, received a text of ${PRIVATE_KEY.length} characters (not shown: what is here may be a private key pasted by mistake)`],
            [{ "-pve2": { address: "10.0.0.14" } }, 'stack config phoenix:nodes.-pve2: expected a Proxmox node name (letters, digits and inner hyphens, at most 63 characters), received "-pve2"'],
        ];
        await assertRefused((nodes) => recordCluster({ "phoenix:nodes": { phoenix: { address: "10.0.0.13" }, ...nodes } }), cases);
    });

    it("an endpoint with user information is refused without echoing it (it may hold a password)", async () => {
        const rec = await recordDev({ "phoenix:endpoint": "https://root@pam:hunter2@pve.lan:8006/" });
        assert.ok(rec.error instanceof pulumi.RunError);
        assert.ok(!rec.error.message.includes("hunter2"), rec.error.message);
        assert.equal(rec.error.message, "stack config phoenix:endpoint: expected the API URL without path, e.g. https://pve.lan:8006/, whose host is an IP address or a DNS name, received a text of 38 characters " +
            "(not shown: it has user information, which may hold a password; the login goes in phoenix:username and phoenix:password, or phoenix:apiToken)");
        assert.equal(rec.registrations.length, 0);
    });

    it("a catalog field that names a secret's key never shows a value that is no key name (it may be the secret itself)", async () => {
        const dir = catalogCopy({
            "103-step-ca.yaml": (t) => t.replace("CA_PASSWORD: stepCaPassword", 'CA_PASSWORD: "Sup3r$ecret!"'),
            "1001-portainer.yaml": (t) => t.replace("  user: phoenix_user\n", "  user: phoenix_user\n  passwordSecret: 31415926\n"),
        });
        const rec = await recordDev({ "phoenix:catalog": dir });
        assert.ok(rec.error instanceof pulumi.RunError, String(rec.error));
        const hidden = "(not shown: this field names the stack config key that holds the secret, set with pulumi config set --secret <key> <value>, and what is here may be the secret itself)";
        assert.deepEqual(rec.error.message.split("\n"), [
            "The guest catalog has 2 problems:",
            `${dir}/1001-portainer.yaml:20:19 cloudInit.passwordSecret: expected string, received a number ${hidden}`,
            `${dir}/103-step-ca.yaml:33:20 features[1].secrets.CA_PASSWORD: expected a stack config key in camelCase, e.g. stepCaPassword, received a text of 12 characters ${hidden}`,
        ]);
        assert.ok(!rec.error.message.includes("Sup3r$ecret!") && !rec.error.message.includes("31415926"), rec.error.message);
        assert.equal(rec.registrations.length, 0);
    });
});
