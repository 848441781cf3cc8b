// cloud-init vendor data for VMs built from the cloud image. Ubuntu's cloud image ships without qemu-guest-agent;
// with the agent enabled in the VM config but absent in the guest, every create and refresh of a clone waits for the
// agent timeout (bpg/terraform-provider-proxmox#2091). nfs-common is installed here too, so the nfs_volumes feature
// finds it on first boot. Vendor data (not user data) is used because Proxmox generates the user data itself from
// the VM's cloud-init settings (user, keys, network), and user data would replace all of that.

/** The snippet's file name on the snippets datastore: one per image-based VM, so two templates never share one. */
export const vendorDataFileName = (guestId: number): string => `phoenix-${guestId}-vendor-data.yaml`;

/** #cloud-config that installs the guest agent and the NFS client at first boot and starts the agent. */
export const vendorDataYaml = (guestId: number): string =>
    [
        "#cloud-config",
        `# Phoenix vendor data of VM ${guestId} and its clones: without the guest agent every clone waits for the agent timeout.`,
        "package_update: true",
        "packages:",
        "  - qemu-guest-agent",
        "  - nfs-common",
        "runcmd:",
        "  - [systemctl, enable, --now, qemu-guest-agent]",
        "",
    ].join("\n");
