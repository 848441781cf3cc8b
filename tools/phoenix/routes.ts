// The original's services could not serve a request as configured (its firewall rules never admitted the hops, its
// gateway looped through a route to itself). After mapping, the import is checked like any catalog
// (catalog/routes.ts) and repaired where the check knows the answer: a firewall rule that admits a hop is added to the
// guest's rules; a route that loops (to the gateway) or reaches nothing that listens is dropped. Each repair is
// reported. Whatever else the check finds stays for the catalog check to print.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readCatalog } from "../../catalog/load";
import { CatalogError } from "../../catalog/problems";
import type { ImportResult, Obj } from "./model";
import { note } from "./model";
import { renderCatalog } from "./render";

/** Rounds of check-and-repair: a dropped route can make a rule unnecessary, never a new one necessary beyond one more round. */
const MAX_ROUNDS = 3;

const checkImport = (result: ImportResult, featuresDir: string | undefined) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phoenix-import-routes-"));
    try {
        for (const [file, text] of renderCatalog(result)) fs.writeFileSync(path.join(dir, file), text);
        return readCatalog({ dir, node: "import-check", ...(featuresDir ? { featuresDir } : {}) }).routeProblems;
    } catch (e) {
        if (e instanceof CatalogError) return undefined; // a catalog that does not even parse: the catalog check reports it
        throw e;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
};

export const repairRoutes = (result: ImportResult, featuresDir?: string): void => {
    for (let round = 0; round < MAX_ROUNDS; round++) {
        const problems = checkImport(result, featuresDir) ?? [];
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
                delete g.guest.traefikService;
                g.notes.push(note("dropped", "traefik_service", p.message.replace(/; (remove traefikService|add the step that runs the service, or fix the port)$/, "")));
                repaired++;
            }
        }
        if (repaired === 0) return;
    }
};
