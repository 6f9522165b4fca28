/**
 * The one way convlab writes a file: to a hidden temporary file beside it, flushed, then renamed into
 * place, then the folder flushed, so that `file` is always either the old file or the whole new one —
 * whatever happens (a crash, Ctrl-C, a full disk).
 *
 * When the disk is full, the folder is read-only or not ours, the error is a WriteError: one line that
 * names the file and the cause. Callers that know what the failure leaves intact and how to go on add it
 * with `withAdvice` (train/run.ts: "the last checkpoint (iteration 300) is intact; free some space, then
 * convlab train --resume DIR").
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ConvlabError } from './errors.ts';

/** What a failed write means to a person, by errno code. */
const CAUSES: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

/** A file that could not be written (nothing under its name was changed). */
export class WriteError extends ConvlabError {
  constructor(
    readonly file: string,
    /** The errno code (ENOSPC, EROFS, EACCES, ...). */
    readonly errno: string,
    message: string,
    cause: unknown,
  ) {
    super(errno === 'ENOSPC' || errno === 'EDQUOT' ? 'DISK_FULL' : 'WRITE_FAILED', message, { cause, exitCode: 1 });
  }

  /** The same error, its line ending with what was kept and how to go on. */
  withAdvice(kept: string, next: string): WriteError {
    return new WriteError(this.file, this.errno, `${this.message}; ${kept}; ${next}`, this.cause);
  }
}

/** Writes `data` (bytes, text, or parts written in order) to `file` atomically. Throws WriteError for disk and permission failures. */
export async function writeFileAtomic(file: string, data: Uint8Array | string | Uint8Array[]): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(temp, 'wx');
    try {
      for (const part of Array.isArray(data) ? data : [data]) await handle.writeFile(part);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, file);
  } catch (err) {
    await fs.rm(temp, { force: true }).catch(() => {});
    throw asWriteError(file, err);
  }
  await syncFolder(path.dirname(file));
}

/** JSON (2-space indented, newline-terminated) written atomically. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** A disk or permission failure as a WriteError naming `file`; anything else unchanged. */
export function asWriteError(file: string, err: unknown): unknown {
  if (err instanceof WriteError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === undefined || !(code in CAUSES)) return err;
  return new WriteError(file, code, `cannot write ${file}: ${CAUSES[code]} (${code})`, err);
}

/** Makes renames in `dir` durable. Not every platform can fsync a folder (Windows): best effort. */
export async function syncFolder(dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, fsConstants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // not supported here; the rename itself is still atomic
  }
}
