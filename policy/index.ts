// Phoenix policy pack: `pulumi preview --policy-pack policy` (or `pulumi up --policy-pack policy`) runs it against the
// stack. The rules live in rules.ts as pure functions; policies.ts gives each its enforcement level.
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("phoenix", {
    description: "Proxmox guest rules: firewalls, privileges, fixed IDs, guest agent, replacement order and protection of stateful guests.",
    policies,
});
