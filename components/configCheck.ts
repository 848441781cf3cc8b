// Every stack config key the program will read for the selected guests, checked before the first resource is
// registered: a missing secret noticed while resources are being created leaves a half-deployed stack behind. The
// secrets every stack or this login needs (phoenix:sshPrivateKey, phoenix:apiToken or phoenix:password) are checked
// here too, so all the values a stack lacks are reported at once.
import * as pulumi from "@pulumi/pulumi";
import type { Catalog } from "../catalog/model";
import { formatProblem } from "../catalog/problems";
import { unsetKeyProblem } from "./configKeys";
import { SSH_PUBLIC_KEYS_FIX, type StackSettings } from "./stackConfig";

/** The problems, one line each: located at the catalog field that names the key, with the command that fixes it. */
export const stackConfigProblems = (catalog: Catalog, ids: readonly number[], settings: StackSettings): string[] => {
    const guests = ids.map((id) => catalog.guests.get(id)!);
    const stackSecrets = ["sshPrivateKey", settings.auth.kind === "token" ? "apiToken" : "password"].filter((key) => !settings.has(key)).map(unsetKeyProblem);
    const missing = guests.flatMap((g) =>
        g.configKeys
            .filter((ref) => !settings.has(ref.key))
            .map((ref) => formatProblem({
                ...ref.at,
                message: `guest ${g.id} reads the secret stack config key phoenix:${ref.key}, which is not set; fix: pulumi config set --secret ${ref.key} <value>`,
            })),
    );
    const vms = guests.filter((g) => g.kind === "vm").map((g) => g.id);
    const keys = vms.length > 0 ? settings.sshPublicKeysProblem() : undefined;
    return [...stackSecrets, ...missing, ...(keys ? [`stack config phoenix:sshPublicKeys: ${keys}; the selected VMs ${vms.join(", ")} need it; fix: ${SSH_PUBLIC_KEYS_FIX}`] : [])];
};

export const checkStackConfig = (catalog: Catalog, ids: readonly number[], settings: StackSettings): void => {
    const problems = stackConfigProblems(catalog, ids, settings);
    if (problems.length === 0) return;
    const n = problems.length;
    throw new pulumi.RunError(`The stack config lacks ${n === 1 ? "a value" : `${n} values`} this stack needs (nothing was registered):\n${problems.join("\n")}`);
};
