// Seeded hostile values for property-style tests (test/property.spec.ts, test/importSafety.spec.ts): a failure names
// its seed and reproduces (PHOENIX_PROPERTY_SEED to change it).

export const SEED = Number(process.env.PHOENIX_PROPERTY_SEED ?? 20260912);

export const mulberry32 = (seed: number) => () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** Control characters and the separators of every file a value can reach (config lines, fstab, units, YAML, shell). */
export const HOSTILE = ["\n", "\r", "\t", "\0", "\x1b", "\x7f", "\u0085", "\u2028", " ", ",", ";", "=", ":", "#", "/", "..", "'", '"', "\\", "$(", "`", "%", "[", "]", "{", "}", "|", "&", "<", ">", "*", "é", "漢"];
export const SAFE = "abcdefghijklmnopqrstuvwxyz0123456789";
