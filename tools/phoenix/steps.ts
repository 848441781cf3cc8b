// Features, application script and health check. The original passed data between guests through files on host
// directories and hard-coded names and addresses in its scripts; here those become catalog values: caFrom for the CA
// root, parameters for the CA's names and the gateway's upstream, stack config keys for the passwords.
import type { ImportContext } from "./context";
import { type Note, type Obj, compact, note } from "./model";
import type { SecretScope } from "./secrets";
import { SERVER_APPLICATIONS, foldedApplication, serverFeatureFor, serverHealthCheck, vllmFeature } from "./aiServers";
import { isObj, num, str } from "./source";

/** The step_ca feature's CA directory (its STEPPATH default), where the CA guest's host directory is mounted. */
export const stepPath = (ctx: ImportContext): string => ctx.scripts.feature("step_ca")?.params.get("STEPPATH")?.default ?? "/etc/step-ca";

/** The port the original's CA app script hard-coded (`step ca init --address :9000`). */
const CA_ADDRESS = ":9000";

const stepCa = (ctx: ImportContext, guestIp: string | undefined, notes: Note[]): Obj => {
    const hv = ctx.source.hypervisor;
    const stepCaConfig = isObj(hv.step_ca) ? hv.step_ca : {};
    const name = str(stepCaConfig.root_ca_name) ?? "Phoenix Internal CA";
    const dnsName = str(stepCaConfig.dns_name) ?? `ca.${ctx.domain}`;
    const provisioner = str(stepCaConfig.provisioner_name) ?? `admin@${ctx.domain}`;
    notes.push(note("added", "features[step_ca].params",
        "caName, caDnsNames, caAddress and caProvisioner come from phoenix_hypervisor_config.json step_ca (which the original never read: its app script hard-coded the same values)"));
    if (stepCaConfig.intermediate_ca_name !== undefined) {
        notes.push(note("dropped", "step_ca.intermediate_ca_name", "step_ca.sh names the intermediate after caName"));
    }
    notes.push(note("secret", "features[step_ca].secrets",
        "the CA and provisioner passwords are stack secrets, never files: pulumi config set --secret stepCaPassword ...; pulumi config set --secret stepCaProvisionerPassword ... (the original generated them into a world-writable host directory)"));
    return {
        name: "step_ca",
        params: {
            caName: name,
            caDnsNames: [dnsName, ctx.domain, `*.${ctx.domain}`, "127.0.0.1", ...(guestIp ? [guestIp] : [])],
            caAddress: CA_ADDRESS,
            caProvisioner: provisioner,
        },
        secrets: { CA_PASSWORD: "stepCaPassword", CA_PROVISIONER_PASSWORD: "stepCaProvisionerPassword" },
    };
};

export const mapFeatures = (raw: Obj, ctx: ImportContext, guestIp: string | undefined, notes: Note[], secrets: SecretScope): (string | Obj)[] | undefined => {
    if (raw.features !== undefined && !Array.isArray(raw.features)) {
        notes.push(note("dropped", "features", "not a list"));
        return undefined;
    }
    const listed = Array.isArray(raw.features) ? raw.features : [];
    const caFrom = ctx.ca?.id;
    const features = listed.flatMap((f: unknown, i: number): (string | Obj)[] => {
        if (typeof f !== "string") {
            notes.push(note("dropped", `features[${i}]`, "not a feature name"));
            return [];
        }
        if (f === "step_ca") return [stepCa(ctx, guestIp, notes)];
        if (f === "vllm") return [vllmFeature(raw, notes, secrets)];
        if ((f === "trusted_ca" || f === "traefik") && caFrom !== undefined) {
            notes.push(note("changed", `features[${f}]`,
                `caFrom: ${caFrom}: the CA's root certificate arrives as data from guest ${caFrom}'s step_ca step instead of a file on ${caFrom}'s shared host directory`));
            if (f === "traefik" && raw.bootstrap_ca_url !== undefined) {
                const derived = ctx.ca?.ip ? `https://${ctx.ca.ip}${CA_ADDRESS}` : undefined;
                notes.push(note("changed", "bootstrap_ca_url",
                    `${String(raw.bootstrap_ca_url)}: replaced by caFrom: ${caFrom} on traefik (CA_URL is derived: ${derived ?? "from the CA guest's address"})` +
                    (derived && derived !== raw.bootstrap_ca_url ? "; the derived URL differs from the original's: check it" : "")));
            }
            return [{ name: f, caFrom }];
        }
        return [f];
    });
    const server = serverFeatureFor(raw, ctx, features, notes, secrets);
    if (server) features.push(server);
    return raw.features === undefined && features.length === 0 ? undefined : features;
};

/** The check an application installs, which becomes the guest's health check (the original had none for it). */
interface InstalledCheck {
    command: string;
    retries: number;
    interval: number;
    why: string;
}

/** The original's application scripts and what replaces each. */
const APPLICATIONS: Record<string, (ctx: ImportContext) => { script: string; params?: Obj; why: string; healthCheck?: InstalledCheck }> = {
    "phoenix_hypervisor_lxc_103.sh": () => ({
        script: "ca_service",
        why: "ca_service starts step-ca and exports the root certificate (the initialisation moved into the step_ca feature)",
    }),
    "phoenix_hypervisor_lxc_101.sh": (ctx) => ({
        script: "nginx_gateway",
        params: { upstreamUrl: `https://${ctx.traefikIp ?? "TRAEFIK-ADDRESS"}:443` },
        why: "nginx_gateway installs the gateway site: TLS on 443 with a certificate from the internal CA, proxied to Traefik's websecure entry point (the original's generate_nginx_gateway_config.sh hard-coded http://<Traefik>:80, where no route listened); its server names are every route's host, derived from the catalog",
        healthCheck: {
            command: "/usr/local/sbin/phoenix-gateway-check", retries: 12, interval: 10,
            why: "every route answers end to end through the gateway's :443 (nginx_gateway installs the check; it runs once Traefik and every route's target are ready)",
        },
    }),
    "phoenix_hypervisor_lxc_102.sh": () => ({
        script: "traefik_routes",
        why: "traefik_routes writes the dynamic configuration generated from every guest's traefikService (the original only did this in `phoenix sync all`)",
        healthCheck: {
            command: "/usr/local/sbin/phoenix-traefik-check", retries: 24, interval: 5,
            why: "Traefik serves a certificate from the internal CA for every route's host (traefik_routes installs the check)",
        },
    }),
};

/** phoenix_hypervisor_lxc_vllm.sh -> lxc_vllm: a script name the catalog accepts, so the error names the file to add. */
const scriptName = (file: string): string =>
    file.replace(/\.sh$/, "").replace(/^phoenix_hypervisor_/, "").toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^[^a-z]+/, "") || "app";

export const mapApplication = (raw: Obj, ctx: ImportContext, notes: Note[]): Obj | undefined => {
    const file = str(raw.application_script);
    const usedByVllm = (Array.isArray(raw.features) && raw.features.includes("vllm")) || (file !== undefined && SERVER_APPLICATIONS[file] === "vllm");
    if (raw.vllm_engine_config !== undefined && !usedByVllm) notes.push(note("dropped", "vllm_engine_config", "the guest has no vllm feature to serve it"));
    if (!file) return undefined;
    const folded = foldedApplication(file);
    if (folded) {
        notes.push(note("changed", "application_script", folded));
        return undefined;
    }
    const known = APPLICATIONS[file]?.(ctx);
    const app: Obj = known ? { script: known.script, params: known.params } : { script: scriptName(file) };
    notes.push(note("changed", "application_script", known ? `${file} -> ${known.script}: ${known.why}` : `${file} -> ${app.script}: no equivalent in features/apps/ yet`));
    return compact(app);
};

export const mapHealthCheck = (raw: Obj, ctx: ImportContext, kind: "lxc" | "vm", isCa: boolean, features: (string | Obj)[] | undefined, notes: Note[]): Obj | undefined => {
    const hc = raw.health_check;
    if (isObj(hc)) {
        const retries = num(hc.retries);
        const interval = num(hc.interval);
        let command = str(hc.command) ?? "";
        if (isCa && /check_step_ca\.sh/.test(command)) {
            command = `step ca health --ca-url https://127.0.0.1${CA_ADDRESS} --root ${stepPath(ctx)}/certs/root_ca.crt`;
            notes.push(note("changed", "health_check",
                `the original never ran it (it read health_checks, not health_check); its host script check_step_ca.sh becomes the equivalent check inside the guest: ${command}`));
        } else {
            notes.push(note("changed", "health_check", "the original never ran it (it read health_checks, not health_check); now it runs inside the guest: check that the command exists there"));
        }
        return compact({ command, retries, interval });
    }
    if (raw.health_checks !== undefined) notes.push(note("dropped", "health_checks", "host-side check scripts; state a healthCheck command that runs inside the guest instead"));
    const installed = APPLICATIONS[str(raw.application_script) ?? ""]?.(ctx).healthCheck;
    if (installed) {
        const { why, ...check } = installed;
        notes.push(note("added", "healthCheck", `${check.command}: ${why}; dependents wait for it`));
        return check;
    }
    const hasDocker = (features ?? []).some((f) => (typeof f === "string" ? f : f.name) === "docker");
    if (kind === "vm" && hasDocker) {
        notes.push(note("added", "healthCheck", "docker info: the guest is ready once its Docker engine answers (dependents wait for this)"));
        return { command: "docker info --format '{{.ServerVersion}}'", retries: 10, interval: 6 };
    }
    return serverHealthCheck(features ?? [], notes);
};
