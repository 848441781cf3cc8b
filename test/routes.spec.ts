// The route check (catalog/routes.ts): every route's request path, hop by hop, for every catalog. The reference
// catalog's routes work end to end; each way a route can fail is a located catalog error naming the fix.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import { firewallVerdict, type FirewallSpec } from "../catalog/firewallCheck";
import { formatRoute, listenersOf } from "../catalog/routes";
import { makePlan } from "../plan/plan";
import { planJson, renderText } from "../plan/render";
import { ROOT, catalogCopy, find, recordDev } from "./helpers";

const problemsOf = (edits: Parameters<typeof catalogCopy>[0]): string[] => {
    const dir = catalogCopy(edits);
    try {
        loadCatalog({ dir, node: "pve", baseDir: ROOT });
    } catch (e) {
        assert.ok(e instanceof CatalogError, String(e));
        return e.problems.map((p) => `${path.basename(p.file)}:${p.line}:${p.col} ${p.field}: ${p.message}`);
    }
    return [];
};

const fw = (rules: FirewallSpec["rules"], inputPolicy: FirewallSpec["inputPolicy"] = "DROP", outputPolicy: FirewallSpec["outputPolicy"] = "ACCEPT"): FirewallSpec =>
    ({ enabled: true, inputPolicy, outputPolicy, rules });
const rule = (r: Partial<FirewallSpec["rules"][number]>): FirewallSpec["rules"][number] => ({ type: "in", action: "ACCEPT", enabled: true, ...r });

describe("firewall verdicts (catalog/firewallCheck.ts)", () => {
    const tcp = (direction: "in" | "out", peer: string, port: number, self = "10.0.0.111") => ({ direction, peer, self, proto: "tcp" as const, port });

    it("takes the first matching rule in catalog order, else the direction's policy", () => {
        const f = fw([rule({ action: "DROP", source: "10.0.0.12" }), rule({ source: "10.0.0.0/24", proto: "tcp", dport: "9443" })]);
        assert.deepEqual(firewallVerdict(f, tcp("in", "10.0.0.12", 9443)), { allowed: false, by: "rules[0] DROP" });
        assert.deepEqual(firewallVerdict(f, tcp("in", "10.0.0.13", 9443)), { allowed: true, by: "rules[1] ACCEPT" });
        assert.deepEqual(firewallVerdict(f, tcp("in", "10.0.0.13", 80)), { allowed: false, by: "input policy DROP" });
        assert.deepEqual(firewallVerdict(f, tcp("out", "10.0.0.13", 80)), { allowed: true, by: "output policy ACCEPT" });
        assert.deepEqual(firewallVerdict({ ...f, enabled: false }, tcp("in", "10.0.0.13", 80)), { allowed: true, by: "firewall off" });
    });

    it("matches ports (lists, ranges), protocols, address lists and ranges, and a destination on an in rule", () => {
        const admits = (r: Partial<FirewallSpec["rules"][number]>, peer = "10.0.0.12", port = 9443) => firewallVerdict(fw([rule(r)]), tcp("in", peer, port)).allowed;
        assert.ok(admits({ dport: "80,9443" }));
        assert.ok(admits({ dport: "9000:9500" }));
        assert.ok(!admits({ dport: "9000:9400" }));
        assert.ok(admits({ proto: "TCP" }));
        assert.ok(!admits({ proto: "udp" }));
        assert.ok(admits({ source: "10.0.0.10,10.0.0.12" }));
        assert.ok(admits({ source: "10.0.0.10-10.0.0.20" }));
        assert.ok(admits({ dest: "10.0.0.111" }) && !admits({ dest: "10.0.0.112" }));
        assert.ok(admits({ macro: "HTTPS" }, "10.0.0.12", 443) && !admits({ macro: "HTTPS" }));
        assert.ok(!admits({ enabled: false }));
    });

    it("matches nothing it cannot evaluate (aliases, IP sets, source ports), so the check asks for a plain rule", () => {
        const admits = (r: Partial<FirewallSpec["rules"][number]>) => firewallVerdict(fw([rule(r)]), tcp("in", "10.0.0.12", 9443)).allowed;
        assert.ok(!admits({ source: "+traefik" }));
        assert.ok(!admits({ source: "dc/traefik" }));
        assert.ok(!admits({ sport: "1024:65535" }));
        assert.ok(!admits({ macro: "Git" }), "a macro whose ports are not evaluated");
    });

    it("admits a subnet only through a rule covering all of it; a rule about part of it is skipped", () => {
        const lan = tcp("in", "10.0.0.0/24", 443, "10.0.0.153");
        assert.ok(firewallVerdict(fw([rule({ source: "10.0.0.0/16", dport: "443" })]), lan).allowed);
        assert.ok(!firewallVerdict(fw([rule({ source: "10.0.0.111", dport: "443" })]), lan).allowed);
        assert.deepEqual(firewallVerdict(fw([rule({ action: "DROP", source: "10.0.0.66" }), rule({ source: "10.0.0.0/24", dport: "443" })]), lan), { allowed: true, by: "rules[1] ACCEPT" });
    });
});

describe("routes of the reference catalog", () => {
    const catalog = loadCatalog({ dir: "guests", node: "pve", baseDir: ROOT });

    it("reach every service from the LAN through the gateway and Traefik, each hop with a listener", () => {
        assert.deepEqual(catalog.routes.map((r) => `${r.host}: ${formatRoute(r)}`), [
            "ca.internal.thinkheads.ai: LAN 10.0.0.0/24 -> 101 Nginx-Phoenix 10.0.0.153:443 https -> 102 Traefik-Internal 10.0.0.12:443 https -> 103 Step-CA 10.0.0.10:9000 https",
            "portainer.internal.thinkheads.ai: LAN 10.0.0.0/24 -> 101 Nginx-Phoenix 10.0.0.153:443 https -> 102 Traefik-Internal 10.0.0.12:443 https -> 1001 Portainer 10.0.0.111:9443 https",
        ]);
    });

    it("takes what each guest listens on from its scripts' @listens lines and parameters", () => {
        const ls = (id: number) => listenersOf(catalog.guests.get(id)!).map((l) => `${l.port} ${l.scheme} ${l.step}`);
        assert.deepEqual(ls(101), ["80 http nginx_gateway", "443 https nginx_gateway"]);
        assert.deepEqual(ls(102), ["80 http traefik", "443 https traefik"]);
        assert.deepEqual(ls(103), ["9000 https step_ca", "9000 https ca_service"], "CA_ADDRESS :9000");
        assert.deepEqual(ls(1001), ["9443 https portainer"]);
        assert.deepEqual(ls(1002), []);
    });

    it("give the gateway every route's host and the CA it trusts; Portainer its own address", () => {
        const env = (id: number) => catalog.guests.get(id)!.application!.env;
        assert.deepEqual(env(101), {
            UPSTREAM_URL: "https://10.0.0.12:443",
            SERVER_NAMES: "ca.internal.thinkheads.ai portainer.internal.thinkheads.ai",
            CA_URL: "https://10.0.0.10:9000",
        });
        assert.deepEqual(env(1001), { GUEST_ADDRESS: "10.0.0.111", CA_URL: "https://10.0.0.10:9000" });
    });

    it("are printed by npm run plan, as text and as JSON", async () => {
        const plan = await makePlan({ scale: 0 });
        const text = renderText(plan);
        assert.ok(text.includes("Routes (each hop checked before any resource: a listener, and both guests' firewalls)\n" +
            "  ca.internal.thinkheads.ai         LAN 10.0.0.0/24 -> 101 Nginx-Phoenix 10.0.0.153:443 https -> 102 Traefik-Internal 10.0.0.12:443 https -> 103 Step-CA 10.0.0.10:9000 https\n" +
            "  portainer.internal.thinkheads.ai  LAN 10.0.0.0/24 -> 101 Nginx-Phoenix 10.0.0.153:443 https -> 102 Traefik-Internal 10.0.0.12:443 https -> 1001 Portainer 10.0.0.111:9443 https\n"), text);
        const json = planJson(plan) as { routes: { name: string; hops: { to: string; port: number; scheme: string }[] }[] };
        assert.deepEqual(json.routes.map((r) => [r.name, r.hops.map((h) => `${h.to}:${h.port} ${h.scheme}`)]), [
            ["ca", ["101 Nginx-Phoenix 10.0.0.153:443 https", "102 Traefik-Internal 10.0.0.12:443 https", "103 Step-CA 10.0.0.10:9000 https"]],
            ["portainer", ["101 Nginx-Phoenix 10.0.0.153:443 https", "102 Traefik-Internal 10.0.0.12:443 https", "1001 Portainer 10.0.0.111:9443 https"]],
        ]);
        const partial = await makePlan({ guests: [101], scale: 0 });
        assert.deepEqual(partial.recorded.routes, [], "a route through a guest the stack does not manage is not shown");
    });
});

/** A guest file edit that adds a firewall rule after the last one (a health check may follow the rules). */
const add = (line: string) => (s: string) => {
    const end = s.indexOf("\n", s.lastIndexOf("\n    - ") + 1) + 1;
    return `${s.slice(0, end)}    - ${line}\n${s.slice(end)}`;
};
/** A guest file edit that removes the firewall rules matching `re` (one line each). */
const drop = (re: RegExp) => (s: string) => s.split("\n").filter((l) => !(l.startsWith("    - {") && re.test(l))).join("\n");

describe("a route that cannot work is a located catalog error", () => {
    it("the original's routes: the gateway on :80 to Traefik's :80, a route to the gateway (a loop), 1002's agent, 1001 closed", () => {
        assert.deepEqual(problemsOf({
            "101-nginx-phoenix.yaml": (s) => s.replace("upstreamUrl: https://10.0.0.12:443", "upstreamUrl: https://10.0.0.12:8443").replace("firewall:", "traefikService: { name: nginx, port: 443 }\nfirewall:"),
            "1002-drphoenix.yaml": (s) => s.replace("firewall:", "traefikService: { name: portainer-agent, port: 9001 }\nfirewall:"),
            "1001-portainer.yaml": (s) => s.replace(/    - \{ type: in, action: ACCEPT, source: 10\.0\.0\.12, .*\n/, ""),
        }), [
            `1001-portainer.yaml:34:3 firewall: route portainer: Traefik reaches the service: the firewall does not admit guest 102 Traefik-Internal (10.0.0.12) on tcp 9443 (input policy DROP); add { type: in, action: ACCEPT, source: 10.0.0.12, proto: tcp, dport: "9443", comment: "route portainer: Traefik reaches the service" }`,
            "1002-drphoenix.yaml:32:48 traefikService.port: route portainer-agent: guest 1002 runs nothing that listens on tcp 9001 (its steps declare: nothing); add the step that runs the service, or fix the port",
            `1002-drphoenix.yaml:34:3 firewall: route portainer-agent: Traefik reaches the service: the firewall does not admit guest 102 Traefik-Internal (10.0.0.12) on tcp 9001 (input policy DROP); add { type: in, action: ACCEPT, source: 10.0.0.12, proto: tcp, dport: "9001", comment: "route portainer-agent: Traefik reaches the service" }`,
            "101-nginx-phoenix.yaml:41:18 application.params.upstreamUrl: the gateway must proxy to Traefik's websecure entry point over https (https://10.0.0.12:443), not https://10.0.0.12:8443",
            "101-nginx-phoenix.yaml:44:17 traefikService: route nginx: guest 101 is the gateway, which proxies to Traefik: a route to it loops; remove traefikService",
        ]);
    });

    it("the gateway closed to the LAN, or Traefik closed to the gateway", () => {
        assert.deepEqual(problemsOf({
            "101-nginx-phoenix.yaml": (s) => s.replace(/    - \{ type: in, action: ACCEPT, source: 10\.0\.0\.0\/24, .*\n/, ""),
            "102-traefik-internal.yaml": (s) => s.replace(/    - \{ type: in, action: ACCEPT, source: 10\.0\.0\.153, proto: tcp, dport: "443".*\n/, ""),
        }), [
            `101-nginx-phoenix.yaml:45:3 firewall: LAN clients reach the gateway: the firewall does not admit the LAN (10.0.0.0/24) on tcp 443 (input policy DROP); add { type: in, action: ACCEPT, source: 10.0.0.0/24, proto: tcp, dport: "443", comment: "LAN clients reach the gateway" }`,
            `102-traefik-internal.yaml:30:3 firewall: the gateway proxies to Traefik: the firewall does not admit guest 101 Nginx-Phoenix (10.0.0.153) on tcp 443 (input policy DROP); add { type: in, action: ACCEPT, source: 10.0.0.153, proto: tcp, dport: "443", comment: "the gateway proxies to Traefik" }`,
        ]);
    });

    it("Traefik's own output policy, or a DROP rule before the ACCEPT", () => {
        assert.deepEqual(problemsOf({
            "102-traefik-internal.yaml": (s) => s.replace("firewall:\n  rules:\n", "firewall:\n  outputPolicy: DROP\n  rules:\n").replace(/    - \{ type: out, action: ACCEPT, dest: 10\.0\.0\.111, .*\n/, ""),
        }), [
            `102-traefik-internal.yaml:30:3 firewall: route portainer: Traefik reaches the service: the firewall does not let guest 102 reach 1001 Portainer at 10.0.0.111:9443 (output policy DROP); add { type: out, action: ACCEPT, dest: 10.0.0.111, proto: tcp, dport: "9443", comment: "route portainer: Traefik reaches the service" }`,
        ], "Traefik's other hops (to the CA's 9000) have out rules");
        assert.deepEqual(problemsOf({
            "1001-portainer.yaml": (s) => s.replace("  rules:\n", "  rules:\n    - { type: in, action: DROP, source: 10.0.0.0/24, comment: nothing from the LAN }\n"),
        }).map((p) => p.replace(/; add .*/, "")), [
            "1001-portainer.yaml:34:3 firewall: the CA validates portainer's ACME http-01 challenge on 1001: the firewall does not admit guest 103 Step-CA (10.0.0.10) on tcp 80 (rules[0] DROP (nothing from the LAN))",
            "1001-portainer.yaml:34:3 firewall: route portainer: Traefik reaches the service: the firewall does not admit guest 102 Traefik-Internal (10.0.0.12) on tcp 9443 (rules[0] DROP (nothing from the LAN))",
        ]);
    });

    it("a service that listens with another scheme, or a target without a static address", () => {
        assert.deepEqual(problemsOf({
            "103-step-ca.yaml": (s) => s.replace("traefikService: { name: ca, port: 9000 }", "traefikService: { name: ca, port: 9000, scheme: http }"),
        }), ["103-step-ca.yaml:41:35 traefikService.port: route ca: guest 103 listens on 9000 with https (step_ca), not http"]);
        assert.deepEqual(problemsOf({
            "900-copy-base.yaml": (s) => s.replace("ip: 10.0.0.200/24", "ip: dhcp").replace("firewall:", "traefikService: { name: base, port: 22 }\nfirewall:"),
        }), ["900-copy-base.yaml:14:7 network.ip: route base: the route's target needs a static address: the route check (and the other guests) connect to it"]);
    });

    it("two routes with one name, and routes without any guest running Traefik", () => {
        assert.deepEqual(problemsOf({
            "1002-drphoenix.yaml": (s) => s.replace("firewall:", "traefikService: { name: portainer, port: 9443 }\nfirewall:"),
        }), ["1002-drphoenix.yaml:32:25 traefikService.name: route portainer: guest 1001 already has a route named portainer"]);
        const noTraefik = problemsOf({ "102-traefik-internal.yaml": null, "101-nginx-phoenix.yaml": null, "1001-portainer.yaml": (s) => s.replace("dependsOn: [102]", "dependsOn: []") });
        assert.deepEqual(noTraefik, [
            "1001-portainer.yaml:32:17 traefikService: route portainer: no guest runs the traefik feature, so nothing serves this route",
            "103-step-ca.yaml:41:17 traefikService: route ca: no guest runs the traefik feature, so nothing serves this route",
        ]);
    });

    it("the certificates' hops: a step that uses the CA must reach it, and the CA its port 80 for http-01", () => {
        assert.deepEqual(problemsOf({
            "103-step-ca.yaml": (s) => s.replace(/    - \{ type: in, action: ACCEPT, source: 10\.0\.0\.111, .*\n/, ""),
            "1001-portainer.yaml": (s) => s.replace(/    - \{ type: in, action: ACCEPT, source: 10\.0\.0\.10, .*\n/, ""),
        }).map((p) => p.replace(/; add .*/, "")), [
            "1001-portainer.yaml:34:3 firewall: the CA validates portainer's ACME http-01 challenge on 1001: the firewall does not admit guest 103 Step-CA (10.0.0.10) on tcp 80 (input policy DROP)",
            "103-step-ca.yaml:43:3 firewall: portainer on 1001 talks to the CA: the firewall does not admit guest 1001 Portainer (10.0.0.111) on tcp 9000 (input policy DROP)",
        ]);
    });

    it("without a gateway Traefik is the entry: it must admit the LAN on 443; a gateway without routes serves nothing", () => {
        const noGateway = { "101-nginx-phoenix.yaml": null };
        assert.deepEqual(problemsOf(noGateway).map((p) => p.replace(/; add .*/, "")), [
            "102-traefik-internal.yaml:30:3 firewall: LAN clients reach Traefik: the firewall does not admit the LAN (10.0.0.0/24) on tcp 443 (input policy DROP)",
        ]);
        const opened = loadCatalog({ dir: catalogCopy({ ...noGateway, "102-traefik-internal.yaml": add(`{ type: in, action: ACCEPT, source: 10.0.0.0/24, proto: tcp, dport: "443", comment: LAN }`) }), node: "pve", baseDir: ROOT });
        assert.deepEqual(opened.routes.map(formatRoute), [
            "LAN 10.0.0.0/24 -> 102 Traefik-Internal 10.0.0.12:443 https -> 103 Step-CA 10.0.0.10:9000 https",
            "LAN 10.0.0.0/24 -> 102 Traefik-Internal 10.0.0.12:443 https -> 1001 Portainer 10.0.0.111:9443 https",
        ]);
        assert.deepEqual(problemsOf({
            "103-step-ca.yaml": (s) => s.replace("traefikService: { name: ca, port: 9000 }\n", ""),
            "1001-portainer.yaml": (s) => s.replace("traefikService: { name: portainer, port: 9443 }\n", ""),
        }), ["101-nginx-phoenix.yaml:39:3 application: the gateway serves the routes (every guest's traefikService) and the catalog has none"]);
    });

    it("a catalog whose routes all work has no problem: the check runs for every catalog", () => {
        assert.deepEqual(problemsOf({}), []);
        // The LAN on the gateway's :80 is a redirect to https, not a hop of any route: optional.
        assert.deepEqual(problemsOf({ "101-nginx-phoenix.yaml": drop(/LAN clients are redirected to https/) }), []);
    });
});

describe("README's example of a route that cannot work", () => {
    it("is what the check prints for the reference catalog without 1001's rule admitting Traefik on 9443", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const block = /```\n {2}(guests\/1001-portainer\.yaml:[\s\S]*?)\n {2}```/.exec(readme);
        assert.ok(block, "the example block in README's Routes section");
        const printed = problemsOf({ "1001-portainer.yaml": drop(/dport: "9443"/) });
        assert.equal(printed.length, 1);
        // The README wraps the line: each line break and its indent is one space.
        assert.equal(block[1].replace(/\n {2}/g, " "), `guests/${printed[0]}`);
    });
});

describe("how each ACME client's certificates are validated", () => {
    const noGateway = { "101-nginx-phoenix.yaml": null, "102-traefik-internal.yaml": add(`{ type: in, action: ACCEPT, source: 10.0.0.0/24, proto: tcp, dport: "443", comment: LAN }`) };
    const caOn80 = /source: 10\.0\.0\.10, proto: tcp, dport: "80/;

    it("without a gateway the CA validates Traefik's challenges on Traefik's own :80, which must admit it", () => {
        assert.deepEqual(problemsOf(noGateway), [], "102 admits the CA on 80");
        assert.deepEqual(problemsOf({ ...noGateway, "102-traefik-internal.yaml": (s) => add(`{ type: in, action: ACCEPT, source: 10.0.0.0/24, proto: tcp, dport: "443", comment: LAN }`)(drop(caOn80)(s)) }), [
            `102-traefik-internal.yaml:30:3 firewall: the CA validates traefik's ACME http-01 challenges (every route's host) on 102: the firewall does not admit guest 103 Step-CA (10.0.0.10) on tcp 80 (input policy DROP); add { type: in, action: ACCEPT, source: 10.0.0.10, proto: tcp, dport: "80", comment: "the CA validates traefik's ACME http-01 challenges (every route's host) on 102" }`,
        ]);
    });

    it("behind a gateway they go through the gateway's :80: Traefik's own :80 needs only the gateway, one problem per missing rule", () => {
        assert.deepEqual(problemsOf({ "102-traefik-internal.yaml": drop(caOn80) }), [], "the CA never connects to Traefik itself");
        // The CA's connection to the gateway's :80 carries the gateway's challenges and Traefik's: one rule, one problem.
        assert.deepEqual(problemsOf({ "101-nginx-phoenix.yaml": drop(caOn80) }), [], "the LAN rule on :80 admits the CA too");
        assert.deepEqual(problemsOf({ "101-nginx-phoenix.yaml": (s) => drop(/LAN clients are redirected/)(drop(caOn80)(s)) }), [
            `101-nginx-phoenix.yaml:45:3 firewall: the CA validates nginx_gateway's ACME http-01 challenge on 101: the firewall does not admit guest 103 Step-CA (10.0.0.10) on tcp 80 (input policy DROP); add { type: in, action: ACCEPT, source: 10.0.0.10, proto: tcp, dport: "80", comment: "the CA validates nginx_gateway's ACME http-01 challenge on 101" }`,
        ]);
    });
});

describe("the routes order what they need across guests", () => {
    const catalog = loadCatalog({ dir: "guests", node: "pve", baseDir: ROOT });
    const depNames = (rec: Awaited<ReturnType<typeof recordDev>>, name: string) =>
        find(rec, name).dependencies.map((u) => rec.registrations.find((r) => r.urn === u)!.name).filter((n) => !n.endsWith("-ct")).sort();

    it("Traefik's routes wait for the gateway's application; the gateway's health check for every route's guests", () => {
        const w102 = catalog.guests.get(102)!.application!.routeWait!;
        assert.deepEqual([w102.guest, w102.on, w102.guests], [102, "application", [101]]);
        assert.match(w102.why, /^traefik_routes loads the routes, whose certificates Traefik then orders; the gateway 101 forwards their ACME http-01 challenges once its nginx_gateway has run$/);
        const w101 = catalog.guests.get(101)!.healthRouteWait!;
        assert.deepEqual([w101.guest, w101.step, w101.on, w101.guests], [101, "health", "ready", [102, 103, 1001]]);
        assert.equal(catalog.guests.get(101)!.application!.routeWait, undefined, "the gateway's application waits for nothing of Traefik's");
        assert.equal(catalog.guests.get(102)!.healthRouteWait, undefined, "Traefik's check is about its own certificates");
    });

    it("are recorded as dependencies of exactly those steps, and the plan keeps the makespan", async () => {
        const rec = await recordDev();
        assert.deepEqual(depNames(rec, "102-app"), ["101-app", "102-feature-traefik", "103-health"]);
        assert.deepEqual(depNames(rec, "101-health"), ["1001-health", "101-app", "102-health", "103-health"]);
        assert.deepEqual(depNames(rec, "101-app"), ["101-feature-step_cli", "103-health"], "the gateway's application does not wait for Traefik");
        assert.deepEqual(depNames(rec, "102-feature-traefik"), ["102-feature-step_cli"], "nor does the traefik feature wait for the gateway: it loads no route");
        // The figures without these waits (README, Performance): 101-app is done (391 s) before 102's traefik feature
        // (396 s), and 101's check (10 s) after 1001's (575 s) ends with 1002's (585 s).
        const plan = await makePlan({ scale: 0 });
        assert.deepEqual([plan.makespans.unlimited, plan.makespans.deploy], [585, 625]);
    });

    it("only between the guests a stack manages: they pull in no guest", async () => {
        const traefik = await makePlan({ guests: [102], scale: 0 });
        assert.deepEqual(traefik.recorded.selection.managed.sort((a, b) => a - b), [102, 103, 900]);
        assert.ok(!traefik.recorded.resources.find((r) => r.name === "102-app")!.awaits.some((a) => a.startsWith("101-")));
        const gateway = await makePlan({ guests: [101], scale: 0 });
        assert.deepEqual(gateway.recorded.selection.managed.sort((a, b) => a - b), [101, 103, 900]);
        assert.deepEqual(gateway.recorded.resources.find((r) => r.name === "101-health")!.awaits.filter((a) => !a.startsWith("101")), ["103-health"]);
    });

    it("a catalog edge that would close a loop with them is a located error", () => {
        assert.deepEqual(problemsOf({ "101-nginx-phoenix.yaml": (s) => s.replace("dependsOn: [103]", "dependsOn: [103, 102]") }), [
            "101-nginx-phoenix.yaml:8:18 dependsOn[1]: the gateway 101 waits for 102 (101 dependsOn 102), but traefik_routes on 102 waits for the gateway's nginx_gateway, which forwards the ACME http-01 " +
                "challenges of Traefik's certificates: they would wait for each other; remove this dependency (the gateway's health check waits for Traefik instead)",
        ]);
        assert.deepEqual(problemsOf({ "1001-portainer.yaml": (s) => s.replace("dependsOn: [102]", "dependsOn: [102, 101]") }), [
            "1001-portainer.yaml:8:18 dependsOn[1]: the route's guest 1001 waits for the gateway 101 (1001 dependsOn 101), but the gateway's health check checks every route through it and so waits for it: " +
                "they would wait for each other; remove this dependency (a route's guests need nothing from the gateway to start), or the gateway's health check",
        ]);
        assert.deepEqual(problemsOf({ "1002-drphoenix.yaml": (s) => s.replace("  - docker\n", "  - { name: docker, after: [101] }\n") }), [], "1002 serves no route: it may wait for the gateway");
        // Through another guest (located at the dependency to drop), and without the gateway's health check nothing
        // waits for the routes' guests.
        assert.deepEqual(problemsOf({ "9000-ubuntu-cloud-template.yaml": (s) => s.replace("template: true\n", "template: true\ndependsOn: [101]\n") }).map((p) => p.replace(/: they would .*/, "")), [
            "9000-ubuntu-cloud-template.yaml:9:13 dependsOn[0]: the route's guest 1001 waits for the gateway 101 (1001 clones 9000, 9000 dependsOn 101), but the gateway's health check checks every route through it and so waits for it",
        ]);
        // Through a GPU lane: 801 clones 911, whose vLLM waits for 910's conversion (they do not fit on GPU 0 together).
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-full-"));
        for (const f of fs.readdirSync(path.join(ROOT, "guests-full"))) fs.copyFileSync(path.join(ROOT, "guests-full", f), path.join(dir, f));
        const file = path.join(dir, "910-copy-vllm-gpux2.yaml");
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("cloneFrom: 901\n", "cloneFrom: 901\ndependsOn: [101]\n"));
        assert.throws(() => loadCatalog({ dir, node: "phoenix", baseDir: ROOT }), (e: unknown) => {
            assert.ok(e instanceof CatalogError);
            // One problem, at the dependency that closes both loops (801's and 802's).
            assert.deepEqual(e.problems.map((p) => `${path.basename(p.file)}:${p.line}:${p.col} ${p.field}: ${p.message.replace(/: they would .*/, "")}`), [
                "910-copy-vllm-gpux2.yaml:8:13 dependsOn[0]: the routes' guests 801 and 802 wait for the gateway 101 (801 clones 911, 911 has a step waiting for 910, 910 dependsOn 101; " +
                    "802 likewise), but the gateway's health check checks every route through them and so waits for them",
            ]);
            return true;
        });
        assert.deepEqual(problemsOf({
            "101-nginx-phoenix.yaml": (s) => s.replace(/# Ready means[\s\S]*$/, ""),
            "1001-portainer.yaml": (s) => s.replace("dependsOn: [102]", "dependsOn: [102, 101]"),
        }), []);
    });
});
