// Reads a stack's config the way the Pulumi CLI would hand it to the program: Pulumi.<stack>.yaml values over the
// defaults declared in Pulumi.yaml. Secrets are never read: every secret key gets a placeholder, so the offline plan
// runs with no credentials and cannot print one.
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../catalog/load";

export { PROJECT_ROOT };

export interface StackConfig {
    project: string;
    stack: string;
    config: Record<string, unknown>;
    secretKeys: string[];
}

export const placeholderFor = (key: string): string => `[secret ${key}]`;

interface Declared {
    type?: string;
    default?: unknown;
    secret?: boolean;
}

export const readStackConfig = (stack: string, root = PROJECT_ROOT): StackConfig => {
    const projectFile = parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { name: string; config?: Record<string, Declared> };
    const project = projectFile.name;
    const stackPath = path.join(root, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackPath)) throw new Error(`no stack file Pulumi.${stack}.yaml in ${root}`);
    const stackValues = ((parse(fs.readFileSync(stackPath, "utf8")) ?? {}) as { config?: Record<string, unknown> }).config ?? {};
    const key = (k: string) => (k.includes(":") ? k : `${project}:${k}`);
    const config: Record<string, unknown> = {};
    const secretKeys: string[] = [];
    for (const [k, decl] of Object.entries(projectFile.config ?? {})) {
        if (decl.secret) {
            config[key(k)] = decl.type === "array" ? [placeholderFor(k)] : placeholderFor(k);
            secretKeys.push(key(k));
        } else if (decl.default !== undefined) config[key(k)] = decl.default;
    }
    for (const [k, v] of Object.entries(stackValues)) {
        const isSecure = typeof v === "object" && v !== null && "secure" in (v as object);
        if (isSecure || secretKeys.includes(key(k))) continue; // encrypted or declared secret: keep the placeholder
        config[key(k)] = v;
    }
    return { project, stack, config, secretKeys };
};
