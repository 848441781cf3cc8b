// Writes the editor JSON Schemas (guests/schema.json, guests/defaults.schema.json) from the zod schemas, so
// completion and validation while typing match what the program enforces. `npm run schema`; a test fails when stale.
import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import { Defaults, Guest } from "./schema";

export const renderSchema = (schema: z.ZodType, title: string): string =>
    `${JSON.stringify({ title, ...z.toJSONSchema(schema, { io: "input", target: "draft-7", unrepresentable: "any" }) }, null, 2)}\n`;

export const renderSchemas = (): Record<string, string> => ({
    "schema.json": renderSchema(Guest, "Phoenix guest (guests/<id>-<name>.yaml)"),
    "defaults.schema.json": renderSchema(Defaults, "Phoenix catalog defaults (guests/defaults.yaml)"),
});

if (require.main === module) {
    const dir = path.resolve(__dirname, "..", process.argv[2] ?? "guests");
    for (const [file, text] of Object.entries(renderSchemas())) {
        fs.writeFileSync(path.join(dir, file), text);
        console.log(`wrote ${path.relative(process.cwd(), path.join(dir, file))}`);
    }
}
