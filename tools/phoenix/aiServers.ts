// The original's GPU guests: vLLM, Ollama and llama.cpp servers. Its application scripts for them
// (phoenix_hypervisor_lxc_vllm.sh, and _955.sh / _957.sh, which are not in its repository) become parameters of the
// features that install and serve each runtime (features/vllm.sh, ollama.sh, llamacpp.sh); vllm_engine_config becomes
// the vllm feature's parameters, and each server gets a health check on its real health endpoint.
import type { ImportContext } from "./context";
import { type Note, type Obj, note } from "./model";
import { type SecretScope, withoutSecrets } from "./secrets";
import { isObj, num, str } from "./source";

/** Application scripts of the original whose work a server feature does. */
export const SERVER_APPLICATIONS: Record<string, "vllm" | "ollama" | "llamacpp"> = {
    "phoenix_hypervisor_lxc_vllm.sh": "vllm",
    "phoenix_hypervisor_lxc_955.sh": "ollama",
    "phoenix_hypervisor_lxc_957.sh": "llamacpp",
};

/** vllm_engine_config keys with a parameter of their own in features/vllm.sh (the rest become extraArgs). */
const VLLM_PARAMS: Record<string, string> = {
    model: "model",
    revision: "modelRevision",
    served_model_name: "servedModelName",
    host: "host",
    port: "port",
    dtype: "dtype",
    max_model_len: "maxModelLen",
    quantization: "quantization",
    gpu_memory_utilization: "gpuMemoryUtilization",
    tensor_parallel_size: "tensorParallelSize",
    trust_remote_code: "trustRemoteCode",
    download_dir: "downloadDir",
};

/** Secret keys of vllm_engine_config that features/vllm.sh takes as secrets. */
const VLLM_SECRETS: Record<string, string> = { api_key: "API_KEY", hf_token: "HF_TOKEN" };

/**
 * The model a llama.cpp guest serves when the original names none (its phoenix_hypervisor_lxc_957.sh is missing):
 * a stand-in the report asks to replace.
 */
export const STANDIN_GGUF = "https://huggingface.co/bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/resolve/main/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf";

/** The CUDA toolkit the llama.cpp build needs when the original states none (nvidia_driver.cuda_version). */
const DEFAULT_CUDA = "12.8";

const kebab = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, "$1-$2").replace(/_/g, "-").toLowerCase();

/** A key=value of the engine config as vllm serve arguments, the way the original's script built them. */
const extraArgs = (key: string, value: unknown): string[] | string => {
    if (value === true) return [`--${kebab(key)}`];
    if (value === false || value === null) return "false or null: the original passed no argument for it";
    const text = typeof value === "object" ? JSON.stringify(value) : String(value);
    return /\s/.test(text) ? "its value has spaces, which extraArgs cannot carry: add it to extraArgs by hand" : [`--${kebab(key)}`, text];
};

/** A guest's volume mounted at the path, from zfs_volumes or volumes. */
const hasVolumeAt = (raw: Obj, path: string): boolean =>
    ["zfs_volumes", "volumes"].some((k) => Array.isArray(raw[k]) && (raw[k] as unknown[]).some((v) => isObj(v) && str(v.mount_point) === path));

/** features: [vllm] with vllm_engine_config -> the vllm feature with the engine settings as its parameters. */
export const vllmFeature = (raw: Obj, notes: Note[], secrets: SecretScope): Obj => {
    if (!isObj(raw.vllm_engine_config)) {
        notes.push(note("added", "features[vllm]", "no vllm_engine_config: set features[vllm].params.model (the model the server serves)"));
        return { name: "vllm" };
    }
    const before = secrets.removed.length;
    const config = withoutSecrets(raw.vllm_engine_config, "vllm_engine_config", secrets) as Obj;
    const params: Obj = {};
    const extra: string[] = [];
    const featureSecrets: Obj = {};
    for (const r of secrets.removed.slice(before)) {
        const name = VLLM_SECRETS[r.path.split(".").pop()!];
        if (name && !(name in featureSecrets)) {
            featureSecrets[name] = r.configKey;
            notes.push(note("changed", r.path, `features[vllm].secrets.${name}: ${r.configKey}`));
        }
    }
    const entries = Object.entries(config).flatMap(([k, v]): [string, string, unknown][] =>
        isObj(v) ? Object.entries(v).map(([kk, vv]) => [`${k}.${kk}`, kk, vv]) : [[k, k, v]]);
    for (const [path, key, value] of entries) {
        const param = VLLM_PARAMS[key];
        if (param && (typeof value === "string" || typeof value === "number" || typeof value === "boolean")) {
            params[param] = value;
            continue;
        }
        const args = extraArgs(key, value);
        if (typeof args === "string") notes.push(note("dropped", `vllm_engine_config.${path}`, args));
        else {
            extra.push(...args);
            notes.push(note("changed", `vllm_engine_config.${path}`, `extraArgs ${args.join(" ")} (no parameter of its own in features/vllm.sh)`));
        }
    }
    if (extra.length > 0) params.extraArgs = extra.join(" ");
    if (params.downloadDir === undefined && hasVolumeAt(raw, "/vllm_models")) {
        params.downloadDir = "/vllm_models";
        notes.push(note("added", "features[vllm].params.downloadDir", "/vllm_models: the guest's models volume (the original mounted it there but its server used the default cache)"));
    }
    notes.push(note("changed", "vllm_engine_config",
        `features[vllm].params (${Object.keys(params).join(", ")}): the vllm feature serves the model with these settings as vllm.service (the original's phoenix_hypervisor_lxc_vllm.sh turned them into vllm serve arguments)`));
    return { name: "vllm", params, ...(Object.keys(featureSecrets).length > 0 ? { secrets: featureSecrets } : {}) };
};

/** The port a guest's server answers on: its traefik_service port, else the original's `ports` mapping, else none. */
const servicePort = (raw: Obj): number | undefined => {
    const traefik = isObj(raw.traefik_service) ? num(raw.traefik_service.port) : undefined;
    const mapped = Array.isArray(raw.ports) ? num(String(raw.ports[0] ?? "").split(":").pop()) : undefined;
    return traefik ?? mapped;
};

/**
 * The server feature an application script of the original stands for, when the guest's features do not name it
 * yet (917 runs llama.cpp through its missing phoenix_hypervisor_lxc_957.sh); undefined otherwise.
 */
export const serverFeatureFor = (raw: Obj, ctx: ImportContext, features: (string | Obj)[], notes: Note[], secrets: SecretScope): Obj | undefined => {
    const file = str(raw.application_script);
    const server = file ? SERVER_APPLICATIONS[file] : undefined;
    if (!server || features.some((f) => (typeof f === "string" ? f : f.name) === server)) return undefined;
    if (server === "vllm") return vllmFeature(raw, notes, secrets);
    const port = servicePort(raw);
    if (server === "llamacpp") {
        const params: Obj = { modelUrl: STANDIN_GGUF, ...(port !== undefined ? { port } : {}) };
        notes.push(note("added", "features[llamacpp]",
            `for ${file}, which is not in the original's repository (nor is its model): llama.cpp built with CUDA serves ${port !== undefined ? `on port ${port} (traefik_service)` : "on port 8080"}; modelUrl ${STANDIN_GGUF} is a stand-in: set the model this guest should serve (and modelSha256)`));
        const cuda = (ctx.defaults.featureParams as Obj | undefined)?.nvidia as Obj | undefined;
        if (cuda?.cudaVersion === undefined) {
            const i = features.findIndex((f) => (typeof f === "string" ? f : f.name) === "nvidia");
            if (i >= 0) features[i] = { name: "nvidia", params: { cudaVersion: DEFAULT_CUDA } };
            notes.push(note("added", "features[nvidia].params.cudaVersion", `${DEFAULT_CUDA}: llama.cpp is built with the CUDA toolkit`));
        }
        return { name: "llamacpp", params };
    }
    notes.push(note("added", `features[${server}]`, `for ${file}: the ${server} feature serves it`));
    return server === "ollama" && port !== undefined && port !== 11434 ? { name: server, params: { port } } : { name: server };
};

/** What a server application script of the original became (the feature that serves), for the report. */
export const foldedApplication = (file: string): string | undefined => {
    const server = SERVER_APPLICATIONS[file];
    if (!server) return undefined;
    const missing = server === "vllm" ? "" : " (the script is not in the original's repository)";
    return `${file}${missing} -> the ${server} feature, which installs ${server === "llamacpp" ? "llama.cpp" : server === "vllm" ? "vLLM" : "Ollama"} and serves the model as a systemd unit`;
};

/** Each server's real health endpoint on the guest's loopback, and how long it may take to answer. */
const HEALTH: Record<string, { path: string; port: number; retries: number; interval: number; what: string }> = {
    vllm: { path: "/health", port: 8000, retries: 60, interval: 10, what: "vLLM's /health, which answers once the model is loaded (up to 10 minutes)" },
    llamacpp: { path: "/health", port: 8080, retries: 60, interval: 10, what: "llama-server's /health, which answers once the model is loaded (up to 10 minutes)" },
    ollama: { path: "/api/version", port: 11434, retries: 10, interval: 3, what: "Ollama's /api/version" },
};

/** The health check of the guest's server feature (vllm first), on its loopback; undefined without one. */
export const serverHealthCheck = (features: (string | Obj)[], notes: Note[]): Obj | undefined => {
    const byName = new Map(features.map((f) => (typeof f === "string" ? [f, {} as Obj] : [String(f.name), (f.params ?? {}) as Obj])));
    const server = ["vllm", "llamacpp", "ollama"].find((s) => byName.has(s));
    if (!server) return undefined;
    const h = HEALTH[server];
    const port = num(byName.get(server)!.port) ?? h.port;
    const command = `curl -fsS http://127.0.0.1:${port}${h.path}`;
    notes.push(note("added", "healthCheck", `${command}: ${h.what}; dependents wait for it`));
    return { command, retries: h.retries, interval: h.interval };
};
