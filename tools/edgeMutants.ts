// npm run mutate-edges: proves that every dependency edge the components declare is load-bearing. Each mutant
// removes one edge from components/ (a dependsOn entry, or an output passed as an input replaced by a plain value);
// the whole mocha suite then runs on a copy of the project and must fail. It prints, per edge, the first test that
// caught it, and exits 1 if any mutant survives or no longer applies (the code changed: update the list below).
// Slow (one suite run per edge, minutes), so not part of npm test; nothing in components/ knows about it. Tests
// that time the run under the SDK are left out: on a loaded machine they fail whatever the code. Arguments, if any,
// select the edges whose name contains one of them (npm run mutate-edges -- "lxc: start").
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

interface Mutant {
    /** The edge, as the report names it. */
    edge: string;
    file: string;
    /** Text that must occur exactly once in the file, and what replaces it. */
    find: string;
    replace: string;
}

const G = "components/guest.ts";
const L = "components/lxc.ts";
const V = "components/vm.ts";

export const MUTANTS: Mutant[] = [
    // Bound to the machine: replaceWith (the SDK adds it to the dependencies) orders every bound step after it.
    { edge: "every bound step -> its machine (replaceWith)", file: G, find: "{ parent: this, replaceWith: [this.machine], deletedWith: this.machine }", replace: "{ parent: this, deletedWith: this.machine }" },
    { edge: "fw-options/fw-rules -> fw-reset", file: G, find: "{ ...this.machineBound(), dependsOn, deleteBeforeReplace: true }", replace: "{ ...this.machineBound(), deleteBeforeReplace: true }" },
    { edge: "fw-options -> machine (vmId/containerId input)", file: G, find: "                [scope]: this.vmId,\n", replace: "                [scope]: this.guestId,\n" },
    { edge: "fw-rules -> machine (vmId/containerId input)", file: G, find: "{ nodeName: this.node, [scope]: this.vmId, rules:", replace: "{ nodeName: this.node, [scope]: this.guestId, rules:" },
    { edge: "snap-pre-configured -> start/wait (up)", file: G, find: 'this.snapshot(tool, "pre-configured", prev)', replace: 'this.snapshot(tool, "pre-configured", [])' },
    { edge: "feature -> previous step", file: G, find: "feature, [...prev, ...gate, ...this.readinessOf", replace: "feature, [...gate, ...this.readinessOf" },
    { edge: "first feature -> dependencies' ready (gated step)", file: G, find: 'const gate = i === 0 ? this.gateFor("feature") : [];', replace: "const gate: pulumi.Resource[] = [];" },
    { edge: "feature with after: -> that guest's ready", file: G, find: '...this.readinessOf(feature.after, "after")', replace: "" },
    { edge: "trusted_ca/traefik -> CA's step_ca (CA root input)", file: G, find: 'const ca = consumesCa ? this.other(step.caFrom!, "CA").ca : undefined;', replace: "const ca = undefined as pulumi.Output<CaRoot> | undefined;" },
    { edge: "app -> previous step", file: G, find: 'spec.application, [...prev, ...this.gateFor("application")]', replace: 'spec.application, [...this.gateFor("application")]' },
    { edge: "app -> dependencies' ready (gated step)", file: G, find: '...this.gateFor("application")', replace: "" },
    { edge: "health -> previous step", file: G, find: 'check, [...prev, ...this.gateFor("health")]', replace: 'check, [...this.gateFor("health")]' },
    { edge: "health -> dependencies' ready (gated step)", file: G, find: '...this.gateFor("health")', replace: "" },
    { edge: "snap-final-form -> every earlier step (triggers input: their ids)", file: G, find: "before.map((c) => c.id)", replace: "[]" },
    { edge: "ready -> the guest's last steps", file: G, find: "this.readyResources = uniqueResources(last);", replace: "this.readyResources = [];" },
    { edge: "clone -> source's last step (cloneSourceResources)", file: G, find: "this.cloneSourceResources = last;", replace: "this.cloneSourceResources = [];" },
    { edge: "lxc: ct -> os-template (dependsOn)", file: L, find: "...hostPrep, ...(download ? [download] : []), ", replace: "...hostPrep, " },
    { edge: "lxc: ct -> host-dirs/subids", file: L, find: "dependsOn: [...laneWait, ...copyWait, ...hostPrep, ", replace: "dependsOn: [...laneWait, ...copyWait, " },
    { edge: "lxc: ct -> previous clone of its source (lane)", file: L, find: "dependsOn: [...laneWait, ...copyWait, ...hostPrep, ", replace: "dependsOn: [...copyWait, ...hostPrep, " },
    { edge: "lxc: a template's copy -> the previous copy's ready (a fixed address)", file: L, find: "dependsOn: [...laneWait, ...copyWait, ...hostPrep, ", replace: "dependsOn: [...laneWait, ...hostPrep, " },
    { edge: "lxc: ct -> clone source (its last step)", file: L, find: "...(download ? [download] : []), ...(source?.cloneSourceResources ?? [])],", replace: "...(download ? [download] : [])]," },
    { edge: "lxc: start -> resize (a clone's disk grown first)", file: L, find: "[...resize, ...conf, ...firewall, ...this.gateFor(\"start\")]", replace: "[...conf, ...firewall, ...this.gateFor(\"start\")]" },
    { edge: "lxc: start -> lxc-conf", file: L, find: "[...resize, ...conf, ...firewall, ...this.gateFor(\"start\")]", replace: "[...resize, ...firewall, ...this.gateFor(\"start\")]" },
    { edge: "lxc: start -> firewall", file: L, find: "[...resize, ...conf, ...firewall, ...this.gateFor(\"start\")]", replace: "[...resize, ...conf, ...this.gateFor(\"start\")]" },
    { edge: "lxc: start -> dependencies' ready (gated step)", file: L, find: "[...resize, ...conf, ...firewall, ...this.gateFor(\"start\")]", replace: "[...resize, ...conf, ...firewall]" },
    { edge: "lxc: fw-options/fw-rules -> fw-reset", file: L, find: 'this.firewall("containerId", [], fwReset);', replace: 'this.firewall("containerId", [], []);' },
    { edge: "lxc: template -> last step", file: L, find: "{ create: templateScript(this.guestId, devices) }, prev,", replace: "{ create: templateScript(this.guestId, devices) }, []," },
    { edge: "vm: vm -> image (dependsOn)", file: V, find: "vendorWait.push(image, this.vendorDataOn(this.node, true));", replace: "vendorWait.push(this.vendorDataOn(this.node, true));" },
    { edge: "vm: vm -> vendor-data (dependsOn)", file: V, find: "vendorWait.push(image, this.vendorDataOn(this.node, true));", replace: "vendorWait.push(image);" },
    { edge: "vm: clone's vm -> the family's vendor-data on its node (dependsOn)", file: V, find: "vendorWait.push(this.vendorDataOn(this.node, false));", replace: "this.vendorDataOn(this.node, false);" },
    { edge: "vm: vm -> clone source (its last step)", file: V, find: '...(source?.cloneSourceResources ?? []), ...this.gateFor("start")]', replace: '...this.gateFor("start")]' },
    { edge: "vm: vm -> previous clone of its source (lane)", file: V, find: "dependsOn: [...laneWait, ...vendorWait,", replace: "dependsOn: [...vendorWait," },
    { edge: "vm: vm -> dependencies' ready (gated step: no in-guest steps)", file: V, find: '...(source?.cloneSourceResources ?? []), ...this.gateFor("start")]', replace: "...(source?.cloneSourceResources ?? [])]" },
    { edge: "vm: fw-options/fw-rules -> fw-reset", file: V, find: "inGuest ? [sshFromNodeRule(settings.nodes.get(this.node)!.address)] : [], fwReset);", replace: "inGuest ? [sshFromNodeRule(settings.nodes.get(this.node)!.address)] : [], []);" },
    { edge: "vm: first in-guest step -> wait", file: V, find: 'this.provision("qm", shell, [wait, ...firewall]);', replace: 'this.provision("qm", shell, [...firewall]);' },
    { edge: "vm: first in-guest step -> firewall (SSH rule)", file: V, find: 'this.provision("qm", shell, [wait, ...firewall]);', replace: 'this.provision("qm", shell, [wait]);' },
    { edge: "vm: template ready -> its vm", file: V, find: "this.settle([this.vm]);", replace: "this.settle([]);" },
    { edge: "vm: ha -> the family's vendor data on the other nodes HA may start it on", file: V, find: "return [...new Set(elsewhere.map((n) => this.vendorDataOn(n, false)))].filter((r) => r !== own);", replace: "return [];" },
    // The routes (catalog/routes.ts RouteWait): Traefik's routes after the gateway's application, which forwards their
    // ACME challenges; the gateway's end-to-end check after Traefik and every route's target are ready.
    { edge: "traefik routes app -> the gateway's app (route wait)", file: G, find: '...(w.on === "application" ? applications : this.readinessOf(managed, "route"))', replace: '...(w.on === "application" ? [] : this.readinessOf(managed, "route"))' },
    { edge: "gateway health -> Traefik's and every route target's ready (route wait)", file: G, find: '...(w.on === "application" ? applications : this.readinessOf(managed, "route"))', replace: '...(w.on === "application" ? applications : [])' },
    // HA: after the guest's last step, the rule after the resource it names, the resource after its group.
    { edge: "ha -> the guest's last steps", file: G, find: "{ ...opts, dependsOn: [...last, ...this.haPrerequisites(ha)] }", replace: "{ ...opts, dependsOn: [...this.haPrerequisites(ha)] }" },
    { edge: "ha rule -> ha resource (resources input)", file: G, find: "resources: [resource.resourceId]", replace: "resources: [`${this.spec.kind === \"lxc\" ? \"ct\" : \"vm\"}:${id}`]" },
    { edge: "ha resource -> ha group (group input)", file: G, find: "...(group ? { group: group.group } : {}),", replace: "...(group ? { group: name } : {})," },
];

const ROOT = path.resolve(__dirname, "..");

/** A copy of the tracked files (node_modules linked), so mutating it never touches the working tree. */
const copyProject = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-mutants-"));
    const files = spawnSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).stdout.split("\0").filter(Boolean);
    for (const f of files) {
        fs.mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
        fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    return dir;
};

/** Runs the mocha suite in `dir`, stopping at the first failure: undefined when it passes, else that test's title. */
const firstFailure = (dir: string): string | undefined => {
    const report = path.join(dir, "mocha-report.json");
    const args = ["mocha", "--bail", "--grep", "under the SDK", "--invert", "--reporter", "json", "--reporter-option", `output=${report}`];
    const r = spawnSync("npx", args, { cwd: dir, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (r.status === 0) return undefined;
    try {
        const failure = (JSON.parse(fs.readFileSync(report, "utf8")) as { failures: { fullTitle: string }[] }).failures[0];
        if (failure) return failure.fullTitle;
    } catch {
        // no report: the suite did not even load
    }
    return `suite failed (exit ${r.status}): ${(r.stdout + r.stderr).trim().split("\n").slice(-3).join(" ")}`;
};

const main = (only: string[]): number => {
    const mutants = only.length === 0 ? MUTANTS : MUTANTS.filter((m) => only.some((o) => m.edge.includes(o)));
    const dir = copyProject();
    try {
        const baseline = firstFailure(dir);
        if (baseline) {
            console.error(`the unmutated suite fails: ${baseline}`);
            return 1;
        }
        let bad = 0;
        for (const m of mutants) {
            const file = path.join(dir, m.file);
            const original = fs.readFileSync(file, "utf8");
            const count = original.split(m.find).length - 1;
            if (count !== 1) {
                console.log(`STALE     ${m.edge}: ${JSON.stringify(m.find)} occurs ${count} times in ${m.file}`);
                bad++;
                continue;
            }
            fs.writeFileSync(file, original.replace(m.find, m.replace));
            const caught = firstFailure(dir);
            fs.writeFileSync(file, original);
            if (caught) console.log(`caught    ${m.edge}\n          by ${caught}`);
            else {
                console.log(`SURVIVED  ${m.edge}`);
                bad++;
            }
        }
        console.log(`\n${mutants.length - bad} of ${mutants.length} edges load-bearing`);
        return bad === 0 ? 0 : 1;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
};

if (require.main === module) process.exit(main(process.argv.slice(2)));
