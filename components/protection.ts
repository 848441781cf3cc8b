// What `pulumi up` says when it refuses to replace or delete a protected container or VM is Pulumi's own text ("marked
// for protection ... remove the `protect` flag from the resource in your Pulumi program"); Phoenix cannot change it,
// and the program cannot foresee the refusal: it never sees the state (the replacement's reason) nor the guests a
// deployment holds beyond its selection (a removal). So every run that has protected guests prints one notice saying
// what that flag is in Phoenix and the exact command that lifts it; `pulumi up` shows it in the stack's block of the
// diagnostics, beside the refusal and its "update failed".
import * as pulumi from "@pulumi/pulumi";

/** Guest IDs named in full up to this many; a larger stack's notice gives the count. */
const NAMED = 12;

/** The notice for these protected guests (undefined when there are none). */
export const protectionNotice = (ids: readonly number[]): string | undefined => {
    if (ids.length === 0) return undefined;
    const sorted = [...ids].sort((a, b) => a - b);
    const which = sorted.length <= NAMED ? sorted.join(", ") : `${sorted.slice(0, NAMED).join(", ")} and ${sorted.length - NAMED} more`;
    const example = sorted[0];
    return (
        `Phoenix protects the containers and VMs of guests ${which}: pulumi up refuses to replace or delete them ("marked for protection", ` +
        `"because it is protected"). The protect flag such a refusal mentions is Phoenix's stack value phoenix:allowReplace: to let the next up ` +
        `replace or delete guest ID, run pulumi config set --path 'phoenix:allowReplace[0]' ID (e.g. ${example}), then pulumi up; ` +
        `npm run plan -- --since REF shows beforehand what would be refused (README: Protection).`
    );
};

/** Logs the notice for the guests of this run whose machine is protected (catalog protect, not in phoenix:allowReplace). */
export const announceProtection = (guests: readonly { id: number; protect: boolean }[], allowReplace: ReadonlySet<number>): void => {
    const notice = protectionNotice(guests.filter((g) => g.protect && !allowReplace.has(g.id)).map((g) => g.id));
    if (notice) void pulumi.log.info(notice);
};
