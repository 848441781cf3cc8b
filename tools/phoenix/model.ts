// What the importer produces: catalog objects (written as YAML) and, for every key of the original it did not carry
// over unchanged, a note saying what happened and why. The notes are the import report.

export type NoteKind =
    | "dropped" // the key is not imported
    | "changed" // imported with a different value or meaning than the original gave it
    | "added" // a value the original did not have (or hard-coded in a script) is now stated in the catalog
    | "duplicate" // a firewall rule matching the same traffic as an earlier one, removed
    | "invalid" // stated with a value of the wrong kind: written as received for the catalog to refuse, never replaced
    | "secret"; // a secret: never written; how to set it instead

export interface Note {
    kind: NoteKind;
    /** The original's key (dotted path), e.g. firewall.rules[3] or portainer_api.admin_password. */
    key: string;
    detail: string;
}

export type Obj = Record<string, unknown>;

export interface GuestImport {
    id: number;
    name: string;
    kind: "lxc" | "vm";
    /** File name in the output directory, <id>-<slug>.yaml. */
    file: string;
    /** The catalog guest, keys in the order they are written. */
    guest: Obj;
    notes: Note[];
    /** Scripts the guest needs that features/ does not have (features/nvidia.sh, features/apps/lxc_vllm.sh). */
    missingScripts: string[];
}

export interface ImportResult {
    from: string;
    defaults: Obj;
    defaultsNotes: Note[];
    /** Notes about phoenix_hypervisor_config.json and the files' root keys. */
    globalNotes: Note[];
    guests: GuestImport[];
    /** Values that must never appear in a written file (passwords found in the input). */
    secretValues: string[];
}

export class ImportError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "ImportError";
    }
}

export const note = (kind: NoteKind, key: string, detail: string): Note => ({ kind, key, detail });

/** Longest name part of a guest file: a host name's length (a longer name is refused by the catalog anyway). */
const MAX_SLUG = 63;

/** Guest file name: <id>-<name in lower case with runs of other characters as one hyphen>.yaml. */
export const guestFileName = (id: number, name: string): string => {
    const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+/, "").slice(0, MAX_SLUG).replace(/-+$/, "");
    return `${id}${slug ? `-${slug}` : ""}.yaml`;
};

/**
 * Characters that must never reach a comment, a report line or a terminal as they are: C0 and C1 controls (line
 * breaks, carriage returns, escape sequences), DEL, the Unicode line and paragraph separators (line breaks to YAML
 * 1.1 readers and to editors), bidirectional overrides (they reorder what a reader sees), the byte order mark and
 * lone surrogates (no UTF-8 spelling).
 */
const UNPRINTABLE = /[\p{Cc}\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/gu;

/** Whether a text holds a character of UNPRINTABLE. */
export const hasUnprintable = (text: string): boolean => new RegExp(UNPRINTABLE.source, "u").test(text);

/** Text for one line of a comment, a report or a message: each UNPRINTABLE character as its JSON escape (\n, \u001b). */
export const printable = (text: string): string =>
    text.replace(UNPRINTABLE, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : c === "\t" ? "\\t" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));

/** An object without its undefined members (so they are not written), keys in the given order. */
export const compact = (o: Obj): Obj => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** A Node.js file system error (ENOENT, ENOTDIR, EACCES ...): something about the user's files, not a bug here. */
export const isFsError = (e: unknown): e is NodeJS.ErrnoException =>
    e instanceof Error && typeof (e as NodeJS.ErrnoException).code === "string" && typeof (e as NodeJS.ErrnoException).syscall === "string";

const FS_REASONS: Record<string, string> = {
    ENOENT: "no such file or directory",
    ENOTDIR: "a component of the path is not a directory",
    EISDIR: "is a directory",
    EEXIST: "already exists",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EROFS: "read-only file system",
    ENOSPC: "no space left on device",
    EDQUOT: "disk quota exceeded",
    ENAMETOOLONG: "name too long",
    ELOOP: "too many levels of symbolic links",
    EMFILE: "too many open files",
    EBUSY: "resource busy",
    EIO: "input/output error",
};

const FS_ACTIONS: Record<string, string> = {
    open: "cannot open",
    read: "cannot read",
    scandir: "cannot list",
    mkdir: "cannot create directory",
    write: "cannot write",
    stat: "cannot access",
    lstat: "cannot access",
    copyfile: "cannot copy",
};

/** One line for the user: "cannot write /out/103-step-ca.yaml: permission denied (EACCES)". */
export const fsErrorMessage = (e: NodeJS.ErrnoException, action?: string, file?: string): string => {
    const what = action ?? FS_ACTIONS[e.syscall ?? ""] ?? `${e.syscall ?? "file operation"} failed on`;
    const where = file ?? e.path;
    const reason = FS_REASONS[e.code ?? ""] ?? e.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "");
    return `${what}${where ? ` ${where}` : ""}: ${reason} (${e.code})`;
};

/** Runs a file system call, turning an error of the user's files into an ImportError saying what could not be done. */
export const fsCall = <T>(action: string, file: string, f: () => T): T => {
    try {
        return f();
    } catch (e) {
        if (isFsError(e)) throw new ImportError(fsErrorMessage(e, action, file));
        throw e;
    }
};
