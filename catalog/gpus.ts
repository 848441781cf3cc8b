// GPUs: a container's `gpus` are indexes into its node's inventory (defaults.yaml nodes.<node>.gpus). Each becomes the
// device nodes the NVIDIA userspace opens, passed through as Proxmox devN entries; the node's driver version flows to
// the nvidia feature, which installs exactly that userspace (the kernel module is the node's).
import type { Problem } from "./problems";
import type { DefaultsFile, NodeHardwareSpec } from "./schema";
import type { YamlSource } from "./yamlSource";

/** Device nodes every GPU container needs besides /dev/nvidia<N>: the control device and the unified memory devices. */
export const NVIDIA_CONTROL_DEVICES = ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"] as const;

/**
 * The device paths for a container's GPUs, control devices first, then the node's declared caps, then one
 * /dev/nvidia<N> per GPU in catalog order (none without GPUs).
 */
export const gpuDevicePaths = (gpus: readonly number[], hw: NodeHardwareSpec | undefined): string[] =>
    gpus.length === 0
        ? []
        : [...NVIDIA_CONTROL_DEVICES, ...(hw?.nvidiaCaps ?? []).map((c) => `/dev/nvidia-caps/nvidia-cap${c}`), ...gpus.map((g) => `/dev/nvidia${g}`)];

/** Each GPU a container names must be declared for its node, once. */
export const checkGpus = (source: YamlSource, gpus: readonly number[], node: string, d: DefaultsFile): Problem[] => {
    if (gpus.length === 0) return [];
    const declared = d.nodes[node]?.gpus.map((g) => g.index) ?? [];
    if (declared.length === 0) {
        return [source.problemAt(["gpus"], `node ${node} declares no GPUs: list them in defaults.yaml nodes.${node}.gpus (index as nvidia-smi shows it on the node), with nodes.${node}.nvidiaDriver`)];
    }
    return gpus.flatMap((g, i) => {
        if (gpus.indexOf(g) < i) return [source.problemAt(["gpus", i], `GPU ${g} is listed twice`)];
        if (!declared.includes(g)) return [source.problemAt(["gpus", i], `GPU ${g} is not declared for node ${node} (defaults.yaml nodes.${node}.gpus has ${declared.join(", ")})`)];
        return [];
    });
};

/** Script parameters the catalog fills from the guest's node and GPUs, and what to set when one cannot be filled. */
export const GPU_DERIVED: Record<string, { from: (gpus: readonly number[], hw: NodeHardwareSpec | undefined) => string | undefined; hint: (node: string) => string }> = {
    NVIDIA_DRIVER_VERSION: {
        from: (_gpus, hw) => hw?.nvidiaDriver,
        hint: (node) => `nodes.${node}.nvidiaDriver in defaults.yaml (the driver version the node runs)`,
    },
    NVIDIA_GPUS: {
        from: (gpus) => (gpus.length > 0 ? gpus.join(",") : undefined),
        hint: () => "gpus: [<index>] on the guest (a container without GPUs has nothing for the NVIDIA userspace to drive)",
    },
};

/** The values of GPU_DERIVED that the script declares and the guest's node and GPUs provide. */
export const gpuDerivedEnv = (declares: (name: string) => boolean, gpus: readonly number[], hw: NodeHardwareSpec | undefined): Record<string, string> =>
    Object.fromEntries(
        Object.entries(GPU_DERIVED)
            .filter(([name]) => declares(name))
            .map(([name, d]) => [name, d.from(gpus, hw)] as const)
            .filter((e): e is readonly [string, string] => e[1] !== undefined),
    );
