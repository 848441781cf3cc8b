// Which guests share which GPU, read off the recorded registrations like the rest of the plan: a container's
// devicePassthroughs name /dev/nvidia<N> on its node, its vllm step states the share of GPU memory vLLM takes, and a
// template step means the container stops once converted.
import type { Recording, Registration } from "./engine";

export interface GpuUse {
    node: string;
    gpu: number;
    /** Guests the GPU is passed through to, ascending. */
    guests: number[];
    /** vLLM's --gpu-memory-utilization per guest serving with vLLM on this GPU. */
    vllmMemory: { guest: number; share: number }[];
    /** Guests among them that become templates: they hold the GPU only while they are being built. */
    templates: number[];
}

const CONTAINER = "proxmoxve:index/containerLegacy:ContainerLegacy";

/** GPU indexes a container's device passthrough names (/dev/nvidia<N>; control devices are not GPUs). */
const gpusOf = (r: Registration): number[] =>
    ((r.inputs?.devicePassthroughs ?? []) as { path?: string }[])
        .map((d) => /^\/dev\/nvidia(\d+)$/.exec(d.path ?? "")?.[1])
        .filter((g): g is string => g !== undefined)
        .map(Number);

/** Every GPU passed through to at least one guest, by node and index. */
export const gpuUse = (rec: Recording): GpuUse[] => {
    const byName = new Map(rec.registrations.map((r) => [r.name, r]));
    const uses = new Map<string, GpuUse>();
    for (const r of rec.registrations) {
        if (r.type !== CONTAINER) continue;
        const guest = Number(r.name.replace(/-ct$/, ""));
        const share = /\bGPU_MEMORY_UTILIZATION='([0-9.]+)'/.exec(String(byName.get(`${guest}-feature-vllm`)?.inputs?.create ?? ""))?.[1];
        for (const gpu of gpusOf(r)) {
            const node = String(r.inputs.nodeName);
            const key = `${node}/${gpu}`;
            const use = uses.get(key) ?? { node, gpu, guests: [], vllmMemory: [], templates: [] };
            use.guests.push(guest);
            if (share !== undefined) use.vllmMemory.push({ guest, share: Number(share) });
            if (byName.has(`${guest}-template`)) use.templates.push(guest);
            uses.set(key, use);
        }
    }
    const asc = (a: number, b: number) => a - b;
    return [...uses.values()]
        .map((u) => ({ ...u, guests: u.guests.sort(asc), templates: u.templates.sort(asc), vllmMemory: u.vllmMemory.sort((a, b) => a.guest - b.guest) }))
        .sort((a, b) => a.node.localeCompare(b.node) || a.gpu - b.gpu);
};

/** The plan's lines for the GPUs (none when no guest has one). */
export const renderGpus = (uses: readonly GpuUse[]): string[] => {
    if (uses.length === 0) return [];
    const out = ["GPUs (device passthrough; the guests on one GPU share its memory)"];
    for (const u of uses) {
        const label = `${u.node} GPU ${u.gpu}`;
        const pad = " ".repeat(label.length + 2);
        out.push(`  ${label}  ${u.guests.join(", ")}${u.guests.length > 1 ? ` (shared by ${u.guests.length} guests)` : ""}`);
        if (u.vllmMemory.length > 0) {
            const total = Math.round(u.vllmMemory.reduce((s, m) => s + m.share, 0) * 100) / 100;
            const over = total > 1 ? "; over 1: these vLLM servers cannot all run at once, vLLM does not start without its share free" : "";
            out.push(`  ${pad}vLLM gpu-memory-utilization ${u.vllmMemory.map((m) => `${m.guest} ${m.share}`).join(", ")} (${total} of the GPU in total${over})`);
        }
        if (u.templates.length > 0) out.push(`  ${pad}templates, which release it once converted: ${u.templates.join(", ")}`);
    }
    return out;
};
