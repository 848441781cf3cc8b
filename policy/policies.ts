// The pack's policies: each wraps one rule of rules.ts with its enforcement level. Kept apart from index.ts because
// constructing a PolicyPack starts the analyzer server; the tests import this file and call the policies directly.
import type { Policies, PolicyResource, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import * as rules from "./rules";

const fromArgs = (a: ResourceValidationArgs): rules.Subject => ({
    type: a.type,
    name: a.name,
    urn: a.urn,
    props: a.props,
    protect: a.opts.protect,
    deleteBeforeReplace: a.opts.deleteBeforeReplace ?? false,
    parent: a.opts.parent,
});

const fromResource = (r: PolicyResource): rules.Subject => ({
    type: r.type,
    name: r.name,
    urn: r.urn,
    props: r.props,
    protect: r.opts.protect,
    deleteBeforeReplace: r.opts.deleteBeforeReplace ?? false,
    parent: r.parent?.urn ?? r.opts.parent,
});

const resourcePolicy = (
    name: string,
    enforcementLevel: "mandatory" | "advisory",
    description: string,
    rule: (r: rules.Subject) => string[],
): ResourceValidationPolicy => ({
    name,
    description,
    enforcementLevel,
    validateResource: (args: ResourceValidationArgs, report: ReportViolation) => rule(fromArgs(args)).forEach((m) => report(m)),
});

const stackPolicy = (
    name: string,
    enforcementLevel: "mandatory" | "advisory",
    description: string,
    rule: (all: readonly rules.Subject[]) => rules.Violation[],
): StackValidationPolicy => ({
    name,
    description,
    enforcementLevel,
    validateStack: (args, report: ReportViolation) => rule(args.resources.map(fromResource)).forEach((v) => report(v.message, v.urn)),
});

export const policies: Policies = [
    resourcePolicy("guest-firewall-default-deny", "mandatory",
        "Guest firewalls are enabled with a DROP/REJECT input policy, and every guest NIC goes through the firewall.", rules.firewallDefaultDeny),
    stackPolicy("guest-firewall-present", "mandatory",
        "Every guest has its firewall options resource (without it Proxmox leaves the guest firewall off).", rules.firewallPresent),
    resourcePolicy("container-unprivileged", "mandatory",
        "Containers are unprivileged unless the catalog says why not (privilegedReason, shown in the description).", rules.containerUnprivileged),
    stackPolicy("container-flags-justified", "advisory",
        "Container nesting/keyctl/fuse are on only when one of the container's features needs them.", rules.containerFlagsJustified),
    resourcePolicy("fixed-vm-ids", "mandatory",
        "Every guest has its fixed catalog ID; the provider never assigns random IDs.", rules.fixedVmId),
    stackPolicy("unique-vm-ids", "mandatory",
        "No two guests share a VM/CT ID.", rules.uniqueVmIds),
    resourcePolicy("vm-guest-agent", "mandatory",
        "VMs have the QEMU guest agent enabled.", rules.vmGuestAgent),
    resourcePolicy("fixed-id-delete-before-replace", "mandatory",
        "Guests with a fixed ID are deleted before their replacement is created.", rules.deleteBeforeReplace),
    stackPolicy("stateful-guests-protected", "mandatory",
        "Guests holding state (the CA, or tagged stateful) are protected from deletion.", rules.statefulProtected),
];
