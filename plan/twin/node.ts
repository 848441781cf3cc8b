// The Proxmox node as the twin sees it: each guest's real configuration (what a provider read returns and what a clone
// copies), the files on its storages, and what Phoenix's node commands do to it. Only what decides a provider's stored
// state or a later step's outcome is kept.
import { copy, unquote } from "./values";

export interface IdMap {
    type: string;
    containerId: number;
    hostId: number;
    size: number;
}

export interface NodeDisk {
    interface: string;
    storage: string;
    sizeGb: number;
}

export interface NodeGuest {
    kind: "lxc" | "vm";
    id: number;
    node: string;
    running: boolean;
    template: boolean;
    /** Address the guest has when running (its static configuration). */
    ipv4?: string;
    /** Container: rootfs; VM: its disks. */
    disks: NodeDisk[];
    unprivileged: boolean;
    /** A container's mount points (mp0, mp1, ...): a bind or device mount names a host path, a volume is on a storage. */
    mounts: { key: string; type: "volume" | "bind" | "device" }[];
    /** Raw lxc.* lines in the main section of /etc/pve/lxc/<id>.conf (lxc.idmap apart). */
    raw: string[];
    idmaps: IdMap[];
    /** /etc/pve/firewall/<id>.fw: options and rules (a clone copies the file). */
    firewall: { options?: Record<string, unknown>; rules: unknown[] };
    snapshots: string[];
    /** A VM's guest agent is enabled in its config. */
    agent: boolean;
}

/** A command failed on the node (the message is what the command or Proxmox prints). */
export class NodeError extends Error {}

export class ProxmoxNode {
    guests = new Map<number, NodeGuest>();
    files = new Set<string>();

    clone(): ProxmoxNode {
        const n = new ProxmoxNode();
        n.guests = new Map([...this.guests].map(([k, g]) => [k, copy(g)]));
        n.files = new Set(this.files);
        return n;
    }

    guest(id: number, what = "guest"): NodeGuest {
        const g = this.guests.get(id);
        if (!g) throw new NodeError(`${what} ${id} does not exist on the node (configuration file for ${id} does not exist)`);
        return g;
    }

    add(g: NodeGuest): NodeGuest {
        if (this.guests.has(g.id)) throw new NodeError(`${g.kind === "lxc" ? "CT" : "VM"} ${g.id} already exists on the node`);
        this.guests.set(g.id, g);
        return g;
    }

    /** pct clone / qm clone: a copy of the source's configuration (volumes copied or linked), never running. */
    cloneGuest(sourceId: number, id: number, opts: { full: boolean; storage?: string; node: string }): NodeGuest {
        const src = this.guest(sourceId, "clone source");
        if (!opts.full && opts.storage) throw new NodeError(`clone ${sourceId} -> ${id}: storage is not allowed for linked clones`);
        if (!opts.full && !src.template) throw new NodeError(`clone ${sourceId} -> ${id}: a linked clone needs a template as its source`);
        // pct clone copies volumes, and dies on a bind or device mount (pve-container src/PVE/API2/LXC.pm:2107-2109).
        const host = src.mounts.find((m) => m.type !== "volume");
        if (host) throw new NodeError(`clone ${sourceId} -> ${id}: unable to clone mountpoint '${host.key}' (type ${host.type})`);
        return this.add({
            ...copy(src),
            id,
            node: opts.node,
            running: false,
            template: false,
            snapshots: [],
            disks: src.disks.map((d) => ({ ...d, storage: opts.full && opts.storage ? opts.storage : d.storage })),
        });
    }

    remove(id: number): void {
        this.guests.delete(id);
    }

    /**
     * What one of Phoenix's commands does when it runs, read from its rendered text (the component functions that
     * render them are tested against real files in test/lxc.spec.ts); returns its stdout. Unknown text runs without
     * effect on the node.
     */
    run(role: string, text: string): string {
        const guard = /if pct config (\d+) \| grep -q '\^template: 1'; then echo ('(?:[^']|'\\'')*') >&2; exit 1; fi/.exec(text);
        if (guard && this.guests.get(Number(guard[1]))?.template) throw new NodeError(unquote(guard[2]));
        const exec = /pct exec (\d+) --/.exec(text);
        if (exec && role !== "start") {
            const g = this.guest(Number(exec[1]), "CT");
            if (g.template || !g.running) throw new NodeError(`CT ${g.id} not running${g.template ? " (it is a template)" : ""}`);
        }
        let m: RegExpExecArray | null;
        if ((m = /^pct resize (\d+) rootfs (\d+)G$/m.exec(text))) {
            const g = this.guest(Number(m[1]), "CT");
            const want = Number(m[2]);
            const current = g.disks[0].sizeGb;
            if (want < current) throw new NodeError(`guest ${g.id}: its root disk is ${current}G, the catalog asks for ${want}G; a container disk cannot shrink: set diskGb to ${current} or more`);
            g.disks[0].sizeGb = want;
            return "";
        }
        if ((m = /^conf=\/etc\/pve\/lxc\/(\d+)\.conf$/m.exec(text)) && /^want\(\) \{/m.test(text)) {
            const g = this.guest(Number(m[1]), "CT");
            g.raw = [...text.matchAll(/^want ('(?:[^']|'\\'')*')$/gm)].map((w) => unquote(w[1]));
            return "";
        }
        if ((m = /rm -f \/etc\/pve\/firewall\/(\d+)\.fw/.exec(text))) {
            this.guest(Number(m[1])).firewall = { rules: [] };
            return "";
        }
        if ((m = /^pct template (\d+)$/m.exec(text))) {
            const g = this.guest(Number(m[1]), "CT");
            g.running = false;
            g.template = true;
            return "";
        }
        if ((m = /(?:^|; |\n)(pct|qm) snapshot (\d+) ('[^']*')/.exec(text))) {
            const g = this.guest(Number(m[2]));
            const name = unquote(m[3]);
            g.snapshots = [...g.snapshots.filter((s) => s !== name), name];
            return "";
        }
        if ((m = /(pct|qm) delsnapshot (\d+) ('[^']*')/.exec(text)) && !/ snapshot \d+ '/.test(text)) {
            const g = this.guests.get(Number(m[2]));
            if (g) g.snapshots = g.snapshots.filter((s) => s !== unquote(m![3]));
            return "";
        }
        if (role === "start" && (m = /pct start (\d+)/.exec(text))) {
            const g = this.guest(Number(m[1]), "CT");
            if (g.template) throw new NodeError(`CT ${g.id}: cannot start a template`);
            g.running = true;
            return "";
        }
        return "";
    }
}
