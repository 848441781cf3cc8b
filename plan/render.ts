// The plan as text (terminal and GitHub job summary: plain sections plus a ```mermaid block), as a mermaid graph
// alone, and as one JSON document. Figures are model seconds from the latency model.
import * as path from "path";
import { DEPLOY_PARALLEL, type FailureReport, type PlanResult } from "./plan";
import type { CrossWait, GuestEdge, PlanGuest, PlanStep, WaitKind } from "./recorded";
import { PROJECT_ROOT } from "./stackFile";
import { renderGpus } from "./gpus";
import { formatRoute } from "../catalog/routes";

/** Model seconds are whole numbers in the latency model; measured ones keep one decimal. */
const round = (x: number): number => Math.round(x * 10) / 10;
const pct = (x: number): string => `${x >= 0 ? "+" : ""}${round(x * 100)} %`;

const EDGE_LABEL: Record<Exclude<WaitKind, "lane" | "gpu" | "step">, string> = { clone: "clone", ca: "CA", ready: "dependsOn", input: "input" };
const LABEL_ORDER: WaitKind[] = ["clone", "ca", "ready", "input"];
/** A readiness wait the catalog does not declare as dependsOn (a feature's `after`, the gateway's health check) is "ready". */
export const edgeLabel = (e: GuestEdge, declared = true): string =>
    LABEL_ORDER.filter((k) => e.kinds.includes(k)).map((k) => (k === "ready" && !declared ? "ready" : EDGE_LABEL[k as Exclude<WaitKind, "lane" | "gpu" | "step">])).join(", ");

/**
 * `graph TD`, guests as nodes, arrows from dependent to dependency (transitive reduction; clone lanes not shown);
 * a dotted arrow waits for the named step of the other guest only, not for it to be ready.
 */
export const renderMermaid = (p: PlanResult): string => {
    const lines = ["graph TD"];
    for (const g of p.recorded.guests) lines.push(`  ${g.id}["${g.id} ${g.name.replace(/"/g, "#quot;")} (${g.kind})"]`);
    const declared = (e: GuestEdge) => p.recorded.guests.find((g) => g.id === e.from)?.dependsOn.includes(e.to) ?? true;
    for (const e of p.recorded.reduced) lines.push(`  ${e.from} -->|${edgeLabel(e, declared(e))}| ${e.to}`);
    const dotted = new Map<string, Set<string>>();
    for (const e of p.recorded.stepEdges) {
        const key = `${e.from} -.->|STEPS| ${e.to}`;
        e.via.forEach((v) => (dotted.get(key) ?? dotted.set(key, new Set()).get(key)!).add(v));
    }
    for (const [key, via] of dotted) lines.push(`  ${key.replace("STEPS", [...via].sort().join(", "))}`);
    return lines.join("\n");
};

/** The latency model file, relative to the project (../shared/perf/latency-model.yaml or plan/latency-model.yaml). */
const modelPath = (p: PlanResult): string => path.relative(PROJECT_ROOT, p.model.source) || p.model.source;

const stepLabel = (s: PlanStep): string => (s.guest === undefined ? s.name : `${s.guest}:${s.role}`);

/** The step the wait effectively hangs on: the one of `via` that finishes last. */
const binding = (p: PlanResult, w: CrossWait): string => w.via.reduce((a, b) => ((p.schedule.end.get(b) ?? 0) > (p.schedule.end.get(a) ?? 0) ? b : a));

const describeWait = (p: PlanResult, w: CrossWait, cloneSource?: number): string => {
    const on = binding(p, w);
    switch (w.kind) {
        case "clone":
            return `clones ${w.guest} (after ${on})`;
        case "lane":
            return `after ${on} (one clone of ${cloneSource ?? "its source"} at a time)`;
        case "gpu":
            return `after ${on} (GPU lane: ${w.guest} frees its GPU memory once converted)`;
        case "ca":
            return `takes ${w.guest}'s CA root (${on})`;
        case "input":
            return `takes an output of ${on}`;
        case "ready":
            return `waits for ${w.guest} ready (${on})`;
        case "step":
            return `waits for ${on} (not for ${w.guest} ready)`;
    }
};

const WAIT_ORDER: WaitKind[] = ["clone", "lane", "gpu", "ca", "input", "step", "ready"];
const pad = (s: string | number, n: number): string => String(s).padEnd(n);
const padL = (s: string | number, n: number): string => String(s).padStart(n);

const whyOf = (p: PlanResult, id: number): string => {
    if (p.recorded.selection.requested.includes(id)) return "requested";
    const by = p.recorded.selection.pulledIn.find((x) => x.id === id);
    return by ? `pulled in by ${by.by} (${by.reason})` : "managed";
};

const guestTitle = (g: PlanGuest): string => `${g.id} ${g.name} (${g.kind}${g.cloneFrom !== undefined ? `, clone of ${g.cloneFrom}` : ""})`;

export const guestTimes = (p: PlanResult, g: PlanGuest): { start: number; ready: number } => ({
    start: g.steps.reduce((m, s) => Math.min(m, p.schedule.start.get(s.name) ?? 0), Infinity),
    ready: g.steps.reduce((m, s) => Math.max(m, p.schedule.end.get(s.name) ?? 0), 0),
});

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? "" : "s"}`;
const parallelName = (n: number): string => (Number.isFinite(n) ? `--parallel ${n}` : "unlimited parallelism");
const neverRun = (n: number): string => (n === 1 ? "1 step never runs" : `${n} steps never run`);

const renderFailure = (p: PlanResult, f: FailureReport): string[] => {
    const stop = f.mode === "stop";
    const out = [
        `Injected failure: ${f.resource} fails at ${f.at} s (${parallelName(p.schedule.parallel)})`,
        stop
            ? "  as a default pulumi up: steps already running at the failure finish, nothing starts after it (--continue-on-error: everything not waiting on the failure still runs)"
            : "  as pulumi up --continue-on-error: everything that does not wait on the failure still runs (a default pulumi up starts nothing after the failure)",
        `  failed       ${f.guest}`,
    ];
    const rows = (label: string, lines: string[]) =>
        lines.length === 0 ? out.push(`  ${pad(label, 12)} (none)`) : lines.forEach((l, i) => out.push(`  ${pad(i === 0 ? label : "", 12)} ${l}`));
    rows("blocked", f.blocked.map((b) => `${pad(b.guest, 5)} ${neverRun(b.steps)}, from ${b.firstBlocked} (waits for ${b.waitsOn})`));
    if (stop) {
        rows(
            "not started",
            f.notStarted.map((b) => `${pad(b.guest, 5)} ${neverRun(b.steps)}, from ${b.firstNotStarted} (would start at ${b.wouldStartAt} s; the run stopped at ${f.at} s)`),
        );
    }
    out.push(`  ${pad("finished", 12)} ${f.finished.length === 0 ? "(none)" : f.finished.map((x) => `${x.guest} (ready at ${x.at} s)`).join(", ")}`);
    out.push(stop ? `  the steps still running at the failure are done at ${f.settledAt} s` : `  everything that can still run is done at ${f.settledAt} s`);
    const m = f.measured;
    // The mock engine has no step scheduler: it never stops a run, so it checks only what waits on the failure.
    const scope = stop ? " (it cannot stop a run: this checks what waits on the failure; what the stop leaves unstarted is simulated only)" : "";
    out.push(
        m.agrees
            ? `  under the SDK: ${m.neverStarted === 0 ? "every other resource ran" : `the ${m.neverStarted} resources that wait on the failure never started, the rest ran`}, as analysed${scope}`
            : `  under the SDK: MISMATCH: never started but not waiting on the failure by the analysis: ${m.onlyMeasured.join(", ") || "-"}; ` +
                  `waiting on the failure by the analysis but started: ${m.onlyAnalysed.join(", ") || "-"}`,
    );
    return out;
};

export const renderText = (p: PlanResult): string => {
    const r = p.recorded;
    const s = p.schedule;
    const out: string[] = [];
    out.push(
        `Phoenix plan: stack ${p.stack}, catalog ${p.catalog} (${plural(r.guests.length, "guest")} on ${plural(r.nodes.length, "node")}, ${r.resources.filter((x) => x.custom).length} resources)`,
        "",
    );

    const nodeWidth = Math.max(4, ...r.nodes.map((n) => n.node.length));
    out.push("Selection", `  requested: ${r.selection.requested.join(", ")}`, `  ${pad("guest", 6)} ${pad("kind", 5)} ${pad("node", nodeWidth)} ${pad("name", 28)} why`);
    for (const g of r.guests) out.push(`  ${pad(g.id, 6)} ${pad(g.kind, 5)} ${pad(g.node, nodeWidth)} ${pad(g.name, 28)} ${whyOf(p, g.id)}`);
    out.push("");

    out.push(`Nodes (guests per node; each runs at most ${plural(s.hostLimit, "heavy step")} at once: clones and creates, downloads, features)`);
    for (const n of r.nodes) out.push(`  ${pad(n.node, nodeWidth)} ${pad(plural(n.guests.length, "guest"), 10)} ${n.guests.join(", ")}`);
    out.push("");

    out.push("Readiness waves (guests in one wave proceed in parallel)");
    r.waves.forEach((w, i) => out.push(`  wave ${i + 1}: ${w.join(", ")}`));
    if (r.lanes.length > 0) {
        out.push("Clone lanes (one clone of a source at a time)");
        for (const l of r.lanes) out.push(`  ${l.source}: ${l.clones.join(" -> ")}`);
    }
    out.push(...renderGpus(p.gpus), "");

    out.push("Steps per guest, by node (duration, simulated start-end; model seconds)");
    const byNode = r.nodes.flatMap((n) => r.guests.filter((g) => g.node === n.node).map((g, i) => ({ g, first: i === 0 })));
    for (const { g, first } of byNode) {
        if (first) out.push(` on ${g.node}`);
        out.push(`  ${guestTitle(g)}`);
        const width = Math.max(...g.steps.map((x) => x.name.length));
        g.steps.forEach((step, i) => {
            const when = `${padL(s.start.get(step.name) ?? 0, 5)}-${pad(s.end.get(step.name) ?? 0, 5)}`;
            const waits = [...step.waits].sort((a, b) => WAIT_ORDER.indexOf(a.kind) - WAIT_ORDER.indexOf(b.kind)).map((w) => describeWait(p, w, g.cloneFrom)).join("; ");
            out.push(`    ${padL(i + 1, 2)}. ${pad(step.name, width)}  ${pad(step.what, 26)} ${padL(step.seconds, 4)} s ${when}${waits ? `  ${waits}` : ""}`.trimEnd());
        });
    }
    out.push("");

    if (r.routes.length > 0) {
        out.push("Routes (each hop checked before any resource: a listener, and both guests' firewalls)");
        const width = Math.max(...r.routes.map((x) => x.host.length));
        for (const route of r.routes) out.push(`  ${pad(route.host, width)}  ${formatRoute(route)}`);
        out.push("");
    }

    const dotted = r.stepEdges.length > 0 ? "; -.-> waits for that step only" : "";
    out.push(`Dependency graph (dependent --> dependency${dotted}; clone lanes not shown)`, "```mermaid", renderMermaid(p), "```", "");

    const model = modelPath(p);
    const critical = s.criticalPath;
    const limited = Number.isFinite(s.parallel);
    out.push(
        limited
            ? `Simulated pulumi up --parallel ${s.parallel} (latency model ${model}; at most ${plural(s.parallel, "resource")} in progress at once, the earliest ready first, as the engine does)`
            : `Simulated pulumi up (latency model ${model}; unlimited parallelism, the Pulumi CLI's default)`,
    );
    out.push(`  makespan         ${padL(s.makespan, 6)} s`);
    const waitsFor = [s.lockWait > 0 ? "clone locks" : "", s.slotWait > 0 ? "a free slot" : "", s.hostWait > 0 ? "their node" : ""].filter(Boolean).join(" and ");
    const over =
        s.makespan === critical.seconds
            ? `equal to the makespan: no step waits for a clone lock${limited ? ", a slot" : ""} or its node`
            : `the makespan is ${pct(s.makespan / Math.max(critical.seconds, 1e-9) - 1)} over it${waitsFor ? `: steps wait for ${waitsFor}` : ""}`;
    out.push(`  critical path    ${padL(critical.seconds, 6)} s  (${over})`);
    out.push(`    ${p.recorded.resources.length > 0 ? criticalSteps(p).join(" -> ") : ""}`);
    out.push(`  one at a time    ${padL(s.serial, 6)} s  (${(s.serial / Math.max(s.makespan, 1e-9)).toFixed(1)}x the makespan: the original phoenix-cli, one step after another)`);
    out.push(`  clone lock waits ${padL(s.lockWait, 6)} s`);
    out.push(
        `  node waits       ${padL(s.hostWait, 6)} s  (heavy steps ready while their node ran ${s.hostLimit} already: ` +
            `latency model limits.concurrent_heavy_steps_per_node${p.model.hostLimitFrom === "default" ? ", not in this model: the default" : ""})`,
    );
    out.push(`  per node         ${[...s.hosts].map(([n, h]) => `${n} done at ${h.end} s${h.hostWait > 0 ? ` (waits ${h.hostWait} s)` : ""}`).join(", ")}`);
    if (limited) out.push(`  slot waits       ${padL(s.slotWait, 6)} s  (summed over the resources that were ready but found ${s.parallel === 1 ? "the slot" : `all ${s.parallel} slots`} busy)`);
    const compared = [`unlimited ${p.makespans.unlimited} s`, `--parallel ${DEPLOY_PARALLEL} (the deploy workflow) ${p.makespans.deploy} s`];
    if (limited && s.parallel !== DEPLOY_PARALLEL) compared.push(`--parallel ${s.parallel} (this plan) ${s.makespan} s`);
    out.push(`  makespan at      ${compared.join(", ")}`);
    if (p.measured) {
        const m = p.measured;
        out.push(
            `  measured under the SDK at ${m.scale} ms per model second${limited ? `, ${plural(s.parallel, "slot")}` : ""}: ${round(m.makespan)} s ` +
                `(${pct(m.makespan / Math.max(s.makespan, 1e-9) - 1)}: the SDK's own time per step)`,
        );
        out.push(
            `    longest wait after all of a resource's dependencies were done: ${round(m.maxLag.seconds)} s (${m.maxLag.name || "-"})`,
        );
    }
    out.push(`  guests ready at: ${r.guests.map((g) => `${g.id} ${guestTimes(p, g).ready} s`).join(", ")}`);
    if (p.failure) out.push("", ...renderFailure(p, p.failure));
    out.push(...warningLines(p.recording.warnings));
    return `${out.join("\n")}\n`;
};

/** The program's warnings (pulumi.log.warn), as `pulumi up` would print them, after a blank line; none: nothing. */
export const warningLines = (warnings: readonly string[]): string[] =>
    warnings.length === 0 ? [] : ["", "Warnings from the program (pulumi up prints them too):", ...warnings.map((w) => `  ${w}`)];

export const criticalSteps = (p: PlanResult): string[] => {
    const byName = new Map(p.recorded.resources.map((x) => [x.name, x]));
    return p.schedule.criticalPath.steps.map((n) => byName.get(n)!).filter((x) => x.seconds > 0).map(stepLabel);
};

export const planJson = (p: PlanResult): unknown => {
    const r = p.recorded;
    const s = p.schedule;
    return {
        stack: p.stack,
        catalog: p.catalog,
        selection: {
            requested: r.selection.requested,
            pulledIn: r.selection.pulledIn,
            guests: r.guests.map((g) => ({ id: g.id, kind: g.kind, name: g.name, why: whyOf(p, g.id) })),
        },
        waves: r.waves,
        lanes: r.lanes,
        gpus: p.gpus,
        nodes: r.nodes,
        guests: r.guests.map((g) => ({
            id: g.id,
            name: g.name,
            kind: g.kind,
            node: g.node,
            dependsOn: g.dependsOn,
            waitsFor: g.waitsFor,
            cloneFrom: g.cloneFrom ?? null,
            steps: g.steps.map((x) => ({
                name: x.name,
                role: x.role,
                what: x.what,
                seconds: x.seconds,
                start: s.start.get(x.name),
                end: s.end.get(x.name),
                awaits: x.awaits,
                waits: x.waits,
            })),
        })),
        edges: r.reduced.map((e) => ({ from: e.from, to: e.to, kinds: e.kinds })),
        stepEdges: r.stepEdges,
        routes: r.routes,
        simulation: {
            model: modelPath(p),
            /** null: unlimited. */
            parallel: Number.isFinite(s.parallel) ? s.parallel : null,
            makespan: s.makespan,
            criticalPath: s.criticalPath.seconds,
            criticalSteps: criticalSteps(p),
            serial: s.serial,
            speedup: round(s.serial / Math.max(s.makespan, 1e-9)),
            lockWait: s.lockWait,
            slotWait: s.slotWait,
            /** null: unlimited. */
            hostLimit: Number.isFinite(s.hostLimit) ? s.hostLimit : null,
            hostWait: s.hostWait,
            hosts: Object.fromEntries(s.hosts),
            makespans: { unlimited: p.makespans.unlimited, deploy: { parallel: DEPLOY_PARALLEL, makespan: p.makespans.deploy } },
            guests: r.guests.map((g) => ({ id: g.id, ...guestTimes(p, g) })),
            measured: p.measured ? { scale: p.measured.scale, makespan: round(p.measured.makespan), maxLag: { ...p.measured.maxLag, seconds: round(p.measured.maxLag.seconds) } } : null,
        },
        ...(p.failure ? { failure: p.failure } : {}),
        warnings: p.recording.warnings,
    };
};
