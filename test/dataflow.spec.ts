import { strict as assert } from "assert";
import { parse } from "yaml";
import { parseCaOutput } from "../components/guest";
import { loadCatalog } from "../catalog/load";
import { traefikDynamicConfig } from "../catalog/traefik";
import { MOCK_CA_FINGERPRINT, MOCK_CA_PEM } from "../plan/engine";
import { ROOT, find, inputs, names, recordDev } from "./helpers";

describe("data flow between guests", () => {
    describe("the CA trust chain", () => {
        it("feeds 103's root certificate and fingerprint into every trusted_ca step as inputs", async () => {
            const rec = await recordDev();
            for (const id of [101, 102, 1001, 1002]) {
                const step = find(rec, `${id}-feature-trusted_ca`);
                assert.deepEqual(names(step.propertyDependencies.create), ["103-feature-step_ca"], `${id}: the edge exists because the data flows`);
                const create = inputs(rec, `${id}-feature-trusted_ca`).create as string;
                assert.ok(create.includes(`CA_FINGERPRINT='${MOCK_CA_FINGERPRINT}'`), `${id}: fingerprint reaches the command: ${create}`);
                assert.ok(create.includes(`CA_ROOT_PEM='${MOCK_CA_PEM}\n'`), `${id}: certificate reaches the command`);
            }
        });

        it("parses step_ca's stdout: the root PEM, then PHOENIX_CA_FINGERPRINT (any case, colons allowed)", () => {
            const colons = MOCK_CA_FINGERPRINT.toUpperCase().match(/../g)!.join(":");
            const out = `${MOCK_CA_PEM}\nPHOENIX_CA_FINGERPRINT=${colons}\n`;
            assert.deepEqual(parseCaOutput(out, 103), { rootPem: `${MOCK_CA_PEM}\n`, fingerprint: MOCK_CA_FINGERPRINT });
        });

        it("passes on only the certificate and its fingerprint: whatever else the step prints, a password included, stays behind", () => {
            const password = "hunter2-CA-password";
            const noisy = `${password}\nstep: initialising ${password}\n${MOCK_CA_PEM}\n${password}\nPHOENIX_CA_FINGERPRINT=${MOCK_CA_FINGERPRINT}\ntrailing ${password}\n`;
            const ca = parseCaOutput(noisy, 103);
            assert.deepEqual(ca, { rootPem: `${MOCK_CA_PEM}\n`, fingerprint: MOCK_CA_FINGERPRINT });
            assert.ok(!JSON.stringify(ca).includes(password));
            // A "certificate" that is the password itself (base64) does not hash to a fingerprint the script computed.
            const smuggled = `-----BEGIN CERTIFICATE-----\n${Buffer.from(password).toString("base64")}\n-----END CERTIFICATE-----\nPHOENIX_CA_FINGERPRINT=${MOCK_CA_FINGERPRINT}\n`;
            assert.throws(() => parseCaOutput(smuggled, 103), /^Error: guest 103: step_ca's PHOENIX_CA_FINGERPRINT is not the SHA-256 of the certificate it printed$/);
            const notBase64 = `-----BEGIN CERTIFICATE-----\npassword: ${password}\n-----END CERTIFICATE-----\nPHOENIX_CA_FINGERPRINT=${MOCK_CA_FINGERPRINT}\n`;
            assert.throws(() => parseCaOutput(notBase64, 103), /step_ca printed no root certificate/);
        });

        it("keeps the output of a step that receives secrets encrypted in the state; the others' stays readable", async () => {
            const rec = await recordDev();
            // (the provider itself adds `connection`, which holds the SSH key)
            const secretOutputs = (name: string) => find(rec, name).additionalSecretOutputs.filter((o) => o !== "connection");
            assert.deepEqual(secretOutputs("103-feature-step_ca"), ["stdout", "stderr"]);
            for (const name of ["103-feature-base_setup", "103-app", "103-health", "101-feature-trusted_ca"]) assert.deepEqual(secretOutputs(name), [], name);
        });

        it("fails clearly when step_ca printed something else", () => {
            assert.throws(() => parseCaOutput("CA ready\n", 103), /^Error: guest 103: step_ca printed no root certificate followed by a PHOENIX_CA_FINGERPRINT= line$/);
            assert.throws(() => parseCaOutput(`${MOCK_CA_PEM}\n`, 103), /PHOENIX_CA_FINGERPRINT/);
            assert.throws(() => parseCaOutput(undefined, 103), /guest 103/);
        });

        it("derives traefik's CA URL from the CA guest's catalog address, so it waits for no CA step", async () => {
            const rec = await recordDev();
            assert.match(inputs(rec, "102-feature-traefik").create, / CA_URL='https:\/\/10\.0\.0\.10:9000' /);
            assert.deepEqual(names(find(rec, "102-feature-traefik").propertyDependencies.create ?? []), []);
        });
    });

    describe("Traefik routes generated from the catalog", () => {
        const catalog = loadCatalog({ dir: "guests", node: "pve", baseDir: ROOT });

        it("has one router and service per guest with a traefikService, https backends verified by the internal CA", () => {
            const doc = parse(traefikDynamicConfig(catalog.guests.values(), "internal.thinkheads.ai"));
            assert.deepEqual(Object.keys(doc.http.routers), ["ca", "portainer"]);
            assert.deepEqual(doc.http.routers.ca, { rule: "Host(`ca.internal.thinkheads.ai`)", entryPoints: ["websecure"], service: "ca", tls: { certResolver: "internal" } });
            assert.deepEqual(doc.http.services.ca, { loadBalancer: { servers: [{ url: "https://10.0.0.10:9000" }], serversTransport: "internal-ca" } });
            assert.deepEqual(doc.http.services.portainer, { loadBalancer: { servers: [{ url: "https://10.0.0.111:9443" }], serversTransport: "internal-ca" } });
        });

        it("hands the generated file to 102's application script", async () => {
            const rec = await recordDev();
            const create = inputs(rec, "102-app").create as string;
            const expected = traefikDynamicConfig(catalog.guests.values(), "internal.thinkheads.ai");
            assert.ok(create.includes(`TRAEFIK_DYNAMIC_YAML='${expected}'`), create.slice(0, 300));
        });

        it("follows the catalog: a new exposed guest gets a route, an http one no CA transport", () => {
            const g = { ...catalog.guests.get(900)!, traefikService: { name: "base", port: 8080, scheme: "http" as const } };
            const doc = parse(traefikDynamicConfig([...catalog.guests.values(), g], "lan"));
            assert.deepEqual(doc.http.services.base, { loadBalancer: { servers: [{ url: "http://10.0.0.200:8080" }] } });
            assert.equal(doc.http.routers.base.rule, "Host(`base.lan`)");
        });
    });
});
