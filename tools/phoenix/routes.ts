// The original's services could not serve a request as configured (its firewall rules never admitted the hops, its
// gateway looped through a route to itself). After mapping, the import is checked like any catalog
// (catalog/routes.ts) and repaired where the check knows the answer: a firewall rule that admits a hop is added to the
// guest's rules; a route that loops (to the gateway) or reaches nothing that listens is dropped, with the rules that
// only admitted Traefik to it. The gateway keeps what the original's did (its container firewall was inert): LAN
// clients on port 80, now redirected to https. Each repair is reported. Whatever else the check finds stays for the
// catalog check to print.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readCatalog } from "../../catalog/load";
import { firewallVerdict } from "../../catalog/firewallCheck";
import { ipOf } from "../../catalog/model";
import { CatalogError } from "../../catalog/problems";
import { GATEWAY_APPLICATION, TRAEFIK_FEATURE, subnetOf } from "../../catalog/routes";
import type { ImportResult, Obj } from "./model";
import { note } from "./model";
import { renderCatalog } from "./render";
import { isObj } from "./source";

/** Rounds of check-and-repair: a dropped route can make a rule unnecessary, never a new one necessary beyond one more round. */
const MAX_ROUNDS = 3;

const checkImport = (result: ImportResult, featuresDir: string | undefined) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-import-routes-"));
    try {
        for (const [file, text] of renderCatalog(result)) fs.writeFileSync(path.join(dir, file), text);
        return readCatalog({ dir, node: "import-check", ...(featuresDir ? { featuresDir } : {}) });
    } catch (e) {
        if (e instanceof CatalogError) return undefined; // a catalog that does not even parse: the catalog check reports it
        throw e;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
};

/** The addresses of the guests that run Traefik, as the import has them. */
const traefikAddresses = (result: ImportResult): string[] =>
    result.guests
        .filter((g) => ((g.guest.features as unknown[] | undefined) ?? []).some((f) => (isObj(f) ? f.name : f) === TRAEFIK_FEATURE))
        .map((g) => String((g.guest.network as Obj | undefined)?.ip ?? "").split("/")[0]);

/** Drops the target's rules that admitted only Traefik on the port of a route that is dropped. */
const dropRouteRules = (g: ImportResult["guests"][number], port: unknown, traefiks: string[], route: string): void => {
    const fw = g.guest.firewall as Obj | undefined;
    const rules = (fw?.rules as Obj[] | undefined) ?? [];
    const kept = rules.filter((r) => {
        const only = r.type === "in" && r.action === "ACCEPT" && traefiks.includes(String(r.source)) && r.dport === String(port);
        if (only) g.notes.push(note("dropped", "firewall.rules", `${JSON.stringify(r)}: it admitted Traefik on ${String(port)} for the route ${route}, which is dropped`));
        return !only;
    });
    if (fw && kept.length < rules.length) fw.rules = kept;
};

/** The gateway admits the LAN on port 80 as the original's did (its firewall was inert): now a redirect to https. */
const keepLanOnPort80 = (result: ImportResult, featuresDir: string | undefined): void => {
    const catalog = checkImport(result, featuresDir)?.catalog;
    for (const spec of catalog?.guests.values() ?? []) {
        const g = result.guests.find((x) => x.id === spec.id);
        const lan = subnetOf(spec);
        if (!g || !lan || spec.application?.name !== GATEWAY_APPLICATION) continue;
        if (firewallVerdict(spec.firewall, { direction: "in", peer: lan, self: ipOf(spec), proto: "tcp", port: 80 }).allowed) continue;
        const rule = { type: "in", action: "ACCEPT", source: lan, proto: "tcp", dport: "80", comment: "LAN clients are redirected to https" };
        const fw = (g.guest.firewall ??= {}) as Obj;
        fw.rules = [...((fw.rules as Obj[] | undefined) ?? []), rule];
        g.notes.push(note("added", "firewall.rules", `${JSON.stringify(rule)}: the original's gateway served the LAN on port 80 (its container firewall was inert); the gateway now redirects it to https`));
    }
};

export const repairRoutes = (result: ImportResult, featuresDir?: string): void => {
    repairHops(result, featuresDir);
    keepLanOnPort80(result, featuresDir);
};

const repairHops = (result: ImportResult, featuresDir: string | undefined): void => {
    for (let round = 0; round < MAX_ROUNDS; round++) {
        const problems = checkImport(result, featuresDir)?.routeProblems ?? [];
        let repaired = 0;
        for (const p of problems) {
            const g = result.guests.find((x) => x.id === p.guest);
            if (!g) continue;
            if (p.kind === "firewall" && p.fix) {
                const fw = (g.guest.firewall ??= {}) as Obj;
                const { enabled: _on, ...rule } = p.fix;
                fw.rules = [...((fw.rules as Obj[] | undefined) ?? []), rule];
                g.notes.push(note("added", "firewall.rules", `${JSON.stringify(rule)}: ${p.message.split(": the firewall")[0]} (the original's rules did not admit it)`));
                repaired++;
            } else if ((p.kind === "loop" || p.kind === "listener") && p.at[0] === "traefikService" && g.guest.traefikService) {
                const route = g.guest.traefikService as Obj;
                dropRouteRules(g, route.port, traefikAddresses(result), String(route.name));
                delete g.guest.traefikService;
                g.notes.push(note("dropped", "traefik_service", p.message.replace(/; (remove traefikService|add the step that runs the service, or fix the port)$/, "")));
                repaired++;
            }
        }
        if (repaired === 0) return;
    }
};
