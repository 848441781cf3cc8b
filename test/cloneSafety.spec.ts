// Clones Proxmox makes differently from what the catalog says, or cannot make at all: refused by the catalog, located
// at the field to change and saying what to do, before any resource is registered. The twin's node refuses the same
// clones, so a scenario that got past the catalog would fail where Proxmox fails.
import { strict as assert } from "assert";
import { loadCatalog } from "../catalog/load";
import { CatalogError } from "../catalog/problems";
import { ProxmoxNode, NodeError } from "../plan/twin/node";
import { modelFor } from "../plan/twin/providers";
import { CONTAINER } from "../plan/twin/rules";
import { twinUp, refresh } from "../plan/twin";
import { ROOT, catalogCopy, devConfig, ops } from "./helpers";

/** The catalog's problems, one per line as the loader prints them (the temporary directory cut off). */
const problemsOf = (dir: string, nodes?: string[]): string[] => {
    try {
        loadCatalog({ dir, node: "phoenix", nodes, baseDir: ROOT });
    } catch (e) {
        if (!(e instanceof CatalogError)) throw e;
        return e.problems.map((p) => `${p.file}:${p.line}:${p.col} ${p.field}: ${p.message}`.split(dir).join("guests"));
    }
    return [];
};

const privileged900 = (t: string) => t.replace("template: true", "template: true\nunprivileged: false\nprivilegedReason: nested containers");

describe("clones: what a clone copies from its source", () => {
    it("a container clone is privileged or unprivileged as its source is: a catalog that says otherwise is an error at cloneFrom", () => {
        const problems = problemsOf(catalogCopy({ "900-copy-base.yaml": privileged900 }));
        const say = (file: string, line: number, id: number) =>
            `guests/${file}:${line}:12 cloneFrom: ${id} would be privileged like its clone source 900 (pct clone copies unprivileged, and the provider cannot change it), ` +
            `but the catalog makes it unprivileged (the default): set unprivileged: false with a privilegedReason to match 900, clone an unprivileged template instead, ` +
            `or leave out cloneFrom to create ${id} from its OS template`;
        assert.deepEqual(problems, [say("101-nginx-phoenix.yaml", 7, 101), say("102-traefik-internal.yaml", 7, 102), say("103-step-ca.yaml", 8, 103)]);
    });

    it("...and at unprivileged when the clone's file sets it", () => {
        const problems = problemsOf(catalogCopy({ "101-nginx-phoenix.yaml": (t) => t.replace("cloneFrom: 900", "cloneFrom: 900\nunprivileged: false\nprivilegedReason: raw sockets") }));
        assert.deepEqual(problems, [
            "guests/101-nginx-phoenix.yaml:8:15 unprivileged: 101 would be unprivileged like its clone source 900 (pct clone copies unprivileged, and the provider cannot change it), " +
                "but the catalog makes it privileged: set unprivileged: true (the default) and drop privilegedReason to match 900, clone a privileged template instead, " +
                "or leave out cloneFrom to create 101 from its OS template",
        ]);
    });

    it("a source and clones that agree are accepted (a privileged template with privileged clones)", () => {
        const privileged = (t: string) => t.replace(/^cloneFrom: 900$/m, "cloneFrom: 900\nunprivileged: false\nprivilegedReason: nested containers");
        const dir = catalogCopy({ "900-copy-base.yaml": privileged900, "101-nginx-phoenix.yaml": privileged, "102-traefik-internal.yaml": privileged, "103-step-ca.yaml": privileged });
        // 101's id maps are for an unprivileged container: only the unprivileged checks would object, and they do not run.
        assert.deepEqual(problemsOf(dir), []);
    });

    it("on a deployed stack, making a clone privileged stops at the catalog: nothing is replaced, and no later up is stuck refusing", async () => {
        const first = await twinUp(devConfig());
        const edited = catalogCopy({ "101-nginx-phoenix.yaml": (t) => t.replace("cloneFrom: 900", "cloneFrom: 900\nunprivileged: false\nprivilegedReason: raw sockets") });
        const next = await twinUp({ ...devConfig({ "phoenix:catalog": edited }), prior: refresh(first.state).state });
        assert.match(next.error ?? "", /101-nginx-phoenix\.yaml:8:15 unprivileged: 101 would be unprivileged like its clone source 900/);
        assert.deepEqual(ops(next), []);
    });
});

describe("clones Proxmox cannot make", () => {
    it("a container template with bind mounts that others clone: an error at its bindMounts, naming the clones (pct clone dies on them)", () => {
        const bind = (t: string) => `${t}bindMounts:\n  - { hostPath: /srv/base, containerPath: /srv/base }\n`;
        const problems = problemsOf(catalogCopy({ "900-copy-base.yaml": bind }));
        assert.equal(problems.length, 1, problems.join("\n"));
        assert.match(problems[0], /^guests\/900-copy-base\.yaml:\d+:1 bindMounts: 900 is the clone source of 101, 102, 103, and Proxmox cannot clone a container with a bind mount \("unable to clone mountpoint 'mp0' \(type bind\)"\): move these bind mounts to the clones that need them \(each clone declares its own bindMounts\), or create those guests from an OS template instead of cloning 900$/);
    });

    it("the twin's node refuses the same clone, with Proxmox's message; a template's volumes clone fine", () => {
        const node = new ProxmoxNode();
        const ct = modelFor(CONTAINER);
        const base = { nodeName: "pve", disk: { datastoreId: "local-lvm", size: 8 }, template: true };
        ct.create("900-ct", { ...base, vmId: 900, mountPoints: [{ volume: "local-lvm", size: "4G", path: "/data" }, { volume: "/srv/base", path: "/srv/base" }] }, node);
        ct.create("901-ct", { ...base, vmId: 901, mountPoints: [{ volume: "local-lvm", size: "4G", path: "/data" }] }, node);
        const clone = (from: number, id: number) => () => ct.create(`${id}-ct`, { nodeName: "pve", vmId: id, clone: { vmId: from }, mountPoints: [{ volume: "/srv/own", path: "/srv/own" }] }, node);
        assert.throws(clone(900, 101), (e: Error) => e instanceof NodeError && e.message === "clone 900 -> 101: unable to clone mountpoint 'mp1' (type bind)");
        assert.doesNotThrow(clone(901, 102));
        assert.deepEqual(node.guest(102).mounts, [{ key: "mp0", type: "bind" }], "the clone's own bind mount, added after the clone");
    });

    it("a linked VM clone to another node from a template on local storage: an error at cloneFrom (qm migrate refuses a linked clone's disk)", () => {
        const dir = catalogCopy({ "1002-drphoenix.yaml": (t) => t.replace(/^(id: .*)$/m, "$1\nnode: pve2\nfullClone: false") });
        const problems = problemsOf(dir, ["phoenix", "pve2"]);
        assert.deepEqual(problems, [
            "guests/1002-drphoenix.yaml:9:12 cloneFrom: guest 9000 is on node phoenix and this VM is on pve2: the provider clones it on phoenix and migrates it to pve2, " +
                "and Proxmox cannot migrate a linked clone of a template on local storage (its disk shares the template's base volume): set fullClone: true to copy the disks. " +
                "Keep a copy of 9000 on pve2 (nodes: { phoenix: 9000, pve2: <a free ID> } in guests/9000-ubuntu-cloud-template.yaml), or use a datastore that allows it (defaults.yaml datastores)",
        ]);
        // A full clone of it is migrated with its disks: accepted.
        assert.deepEqual(problemsOf(catalogCopy({ "1002-drphoenix.yaml": (t) => t.replace(/^(id: .*)$/m, "$1\nnode: pve2") }), ["phoenix", "pve2"]), []);
    });
});
