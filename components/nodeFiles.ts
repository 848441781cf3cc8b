// Files on the nodes' datastores that several guests use: downloaded images and OS templates, cloud-init snippets.
// Each file exists once per place, and one resource manages it: on a node-local datastore a place is (node,
// datastore), on a shared one the datastore itself. Two resources for one file would fight (the second download
// overwrites the file under the first; deleting either removes it for both).
import type * as pulumi from "@pulumi/pulumi";
import type { DefaultsFile } from "../catalog/schema";

export class NodeFiles {
    private readonly made = new Map<string, pulumi.CustomResource>();

    constructor(private readonly datastores: DefaultsFile["datastores"]) {}

    /** Where a file on `storage`, seen from `node`, lives. */
    place(storage: string, node: string): string {
        return this.datastores[storage]?.shared ? `shared:${storage}` : `${node}:${storage}`;
    }

    /** The resource managing `file` at the place of (storage, node): made by the first guest that needs it. */
    once<R extends pulumi.CustomResource>(storage: string, node: string, file: string, make: () => R): R {
        const key = `${this.place(storage, node)}/${file}`;
        let r = this.made.get(key) as R | undefined;
        if (!r) this.made.set(key, (r = make()));
        return r;
    }
}
