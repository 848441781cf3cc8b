// The provider twin: the program run under the recorder with the twin answering for the providers, from a prior
// state to the next, and `pulumi refresh` on a state. Tests drive scenarios with it (first up, edit, second up);
// `npm run plan -- --since REF` derives its prior state and the change with it.
import { recordProgram, type RunOptions } from "../engine";
import { Deployment, type Mode, type RunResult, type StackState, emptyState } from "./deployment";

export { refresh, emptyState } from "./deployment";
export type { Change, Mode, Op, RunResult, StackState } from "./deployment";

export interface TwinRunOptions extends Omit<RunOptions, "provider" | "latency" | "fail"> {
    /** The state the run starts from (default: an empty stack on an empty node). */
    prior?: StackState;
    mode?: Mode;
    /** URNs to replace whatever their diff (`pulumi up --replace URN`). */
    replace?: string[];
}

/** One `pulumi up` of the program against the twin. */
export const twinUp = async (opts: TwinRunOptions): Promise<RunResult> => {
    const prior = opts.prior ?? emptyState();
    const deployment = new Deployment(prior, opts.mode ?? "up", new Set(opts.replace ?? []));
    // What the program asks Proxmox is answered from the node as the run finds it (where each container is).
    const containers = [...prior.node.guests.values()].filter((g) => g.kind === "lxc").map((g) => ({ vmId: g.id, nodeName: g.node, template: g.template, tags: ["phoenix"] }));
    const invokes = { "proxmoxve:index/getContainersLegacy:getContainersLegacy": () => ({ id: "containers", containers }), ...opts.invokes };
    const recording = await recordProgram({ ...opts, invokes, provider: deployment });
    return deployment.finish(recording);
};
