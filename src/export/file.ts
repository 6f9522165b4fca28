/**
 * `convlab export`'s work: read a saved model with the project's loader (every file and shape checked,
 * typed errors), build the ONNX bytes, and write them atomically without replacing a file unless asked.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { ConvlabError } from '../errors.ts';
import { loadModel } from '../model/checkpoint.ts';
import type { NetworkConfig } from '../model/config.ts';
import { DEFAULT_LAYOUT, onnxModelBytes, type OnnxLayout } from './onnx.ts';

/** An export that cannot be written (the target exists, is a folder, or its folder cannot be written). */
export class ExportError extends ConvlabError {}

/** The file name `convlab export` writes into the model folder by default. */
export const ONNX_FILE = 'model.onnx';

/** convlab's version, for `producer_version`. */
export const convlabVersion: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** The ONNX bytes of a model already in memory (the server's): weights as tensors, by weightSpecs name. */
export function onnxFromTensors(
  net: NetworkConfig,
  weights: ReadonlyMap<string, tf.Tensor>,
  metadata: Record<string, unknown>,
  layout: OnnxLayout = DEFAULT_LAYOUT,
): Uint8Array {
  const values = new Map<string, Float32Array>();
  for (const [name, t] of weights) values.set(name, t.dataSync() as Float32Array);
  return onnxModelBytes(net, values, { layout, metadata, producerVersion: convlabVersion });
}

export interface ExportOptions {
  /** A folder written by `convlab train` (model.json + weights.bin). */
  modelDir: string;
  /** Where to write; default `modelDir/model.onnx`. */
  out?: string;
  layout?: OnnxLayout;
  /** Replace `out` if it exists. */
  force?: boolean;
}

export interface ExportResult {
  file: string;
  bytes: number;
  layout: OnnxLayout;
  net: NetworkConfig;
}

/** Load `modelDir`, export it, write `out` atomically. Throws ModelFormatError or ExportError (exit 2). */
export async function exportOnnxFile(options: ExportOptions): Promise<ExportResult> {
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const out = options.out ?? path.join(options.modelDir, ONNX_FILE);
  // Refuse early, before reading the model: the common mistake costs nothing.
  await checkTarget(out, options.force === true);

  const { net, weights, metadata } = await loadModel(options.modelDir);
  let bytes: Uint8Array;
  try {
    bytes = onnxFromTensors(net, weights, metadata, layout);
  } finally {
    for (const t of weights.values()) t.dispose();
  }
  await writeAtomic(out, bytes, options.force === true);
  return { file: out, bytes: bytes.byteLength, layout, net };
}

async function checkTarget(out: string, force: boolean): Promise<void> {
  const stat = await fs.stat(out).catch(() => undefined);
  if (stat?.isDirectory()) {
    throw new ExportError('EXPORT_TARGET', `--out ${out}: is a folder — pass a file name, e.g. ${path.join(out, ONNX_FILE)}`);
  }
  if (stat && !force) throw new ExportError('EXPORT_EXISTS', `${out}: already exists — pass --force to replace it, or --out another file`);
}

/**
 * Write `bytes` to a temp file next to `out`, fsync, then move it into place: with `force` by rename
 * (replaces atomically), otherwise by link (fails if `out` appeared meanwhile), so a reader never sees a
 * half-written file and nothing is replaced unasked. The temp file is removed on every path.
 */
async function writeAtomic(out: string, bytes: Uint8Array, force: boolean): Promise<void> {
  const dir = path.dirname(out);
  const fail = (err: unknown): never => {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ExportError('EXPORT_WRITE', `--out ${out}: cannot write there (${reason}) — pick a folder you can write to`, { cause: err });
  };
  await fs.mkdir(dir, { recursive: true }).catch(fail);
  const temp = path.join(dir, `.${path.basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(temp, 'wx').catch(fail);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (force) await fs.rename(temp, out);
    else {
      try {
        await fs.link(temp, out);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new ExportError('EXPORT_EXISTS', `${out}: already exists — pass --force to replace it, or --out another file`);
        // Some file systems have no hard links: fall back to check-then-rename.
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
        if (
          await fs.stat(out).then(
            () => true,
            () => false,
          )
        ) {
          throw new ExportError('EXPORT_EXISTS', `${out}: already exists — pass --force to replace it, or --out another file`);
        }
        await fs.rename(temp, out);
      }
    }
  } catch (err) {
    if (err instanceof ConvlabError) throw err;
    fail(err);
  } finally {
    await fs.rm(temp, { force: true }).catch(() => {});
  }
  await syncDir(dir);
}

/** Make the new name durable. Directories cannot be opened for fsync on every platform (Windows): best effort. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // not supported here; the link or rename itself is still atomic
  }
}
