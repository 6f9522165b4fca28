/**
 * Training checkpoints: one file, `checkpoint.bin`, written atomically (atomic-write.ts: temporary file,
 * fsync, rename, fsync of the folder), so a run killed at any moment leaves either the previous checkpoint or the new one.
 *
 * Layout: the 8 bytes `CLCKPT02`, a uint32 (little-endian) header length, the header as UTF-8 JSON, zero
 * padding to a multiple of 4, then float32 little-endian values: the weights in weightSpecs order, then
 * every optimizer slot (Adam: m then v; SGD: velocity; RMSProp: ms, mom), each over the parameters listed
 * for it in the header (all of them, once a step has been taken). The header holds the run's config,
 * backend and worker count, the sampler state, the optimizer's type and step, the history so far and the
 * SHA-256 of the values, so a damaged file is refused rather than resumed. Dropout masks and augmentation
 * are drawn from (seed, iteration), so they need nothing here.
 */
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendName } from '../backend.ts';
import { weightSpecs, type OptimizerType, type RunConfig } from '../model/config.ts';
import { parseSavedNetwork } from '../model/validate.ts';
import { ConvlabError, formatCount } from '../errors.ts';
import { writeFileAtomic } from '../atomic-write.ts';
import type { Params } from '../model/cnn.ts';
import type { TrainState } from './loop.ts';

const MAGIC = 'CLCKPT02';
export const CHECKPOINT_FILE = 'checkpoint.bin';

export class CheckpointError extends ConvlabError {}

export interface CheckpointHeader {
  version: 2;
  run: RunConfig;
  preset: string;
  /** The data set (`mnist`, `idx:DIR`, `cifar10:DIR`), loaded again on resume. */
  dataset: string;
  backend: BackendName;
  workers: number;
  /** The run's --checkpoint-every (0 = none), kept when it is resumed. */
  checkpointEvery: number;
  /** Completed iterations. */
  iteration: number;
  state: Omit<TrainState, 'optimizer'> & { optimizer: { type: OptimizerType; step: number } };
  /** The optimizer slots that follow the weights, in order, each over these parameters (weightSpecs order). */
  slots: { slot: string; names: string[] }[];
  sha256: string;
  savedAt: string;
}

export interface Checkpoint {
  header: CheckpointHeader;
  weights: Map<string, Float32Array>;
  state: TrainState;
}

export interface CheckpointInput {
  run: RunConfig;
  preset: string;
  dataset: string;
  backend: BackendName;
  workers: number;
  checkpointEvery: number;
  params: Params;
  state: TrainState;
}

export async function writeCheckpoint(dir: string, c: CheckpointInput): Promise<void> {
  const specs = weightSpecs(c.run.network);
  const saved = c.state.optimizer.slots;
  const slots = Object.keys(saved).map((slot) => ({ slot, names: specs.map((s) => s.name).filter((name) => saved[slot][name] !== undefined) }));
  const arrays: Float32Array[] = [
    ...specs.map((s) => c.params.get(s.name)!.dataSync() as Float32Array),
    ...slots.flatMap(({ slot, names }) => names.map((name) => saved[slot][name])),
  ];
  const values = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    values.set(a, offset);
    offset += a.length;
  }
  const payload = littleEndian(values);
  const { optimizer, ...rest } = c.state;
  const header: CheckpointHeader = {
    version: 2,
    run: c.run,
    preset: c.preset,
    dataset: c.dataset,
    backend: c.backend,
    workers: c.workers,
    checkpointEvery: c.checkpointEvery,
    iteration: c.state.iteration,
    state: { ...rest, optimizer: { type: optimizer.type, step: optimizer.step } },
    slots,
    sha256: createHash('sha256').update(payload).digest('hex'),
    savedAt: new Date().toISOString(),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - ((12 + json.length) % 4)) % 4;
  const head = Buffer.alloc(12 + json.length + pad);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 8);
  json.copy(head, 12);
  await writeFileAtomic(join(dir, CHECKPOINT_FILE), [head, payload]);
}

export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const path = join(dir, CHECKPOINT_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CheckpointError(
        'CHECKPOINT_NOT_FOUND',
        `${dir}: no ${CHECKPOINT_FILE} to resume from — pass the --out folder of a run started with --checkpoint-every or stopped with Ctrl-C`,
        { cause: err },
      );
    }
    throw err;
  }
  const bad = (why: string) => new CheckpointError('CHECKPOINT_CORRUPT', `${path}: ${why}; the checkpoint cannot be resumed`);
  if (bytes.length >= 12 && bytes.toString('latin1', 0, 8) === 'CLCKPT01') throw bad('it was written by an older convlab (format 1); start the run again');
  if (bytes.length < 12 || bytes.toString('latin1', 0, 8) !== MAGIC) throw bad('not a convlab checkpoint');
  const jsonLength = bytes.readUInt32LE(8);
  if (12 + jsonLength > bytes.length) throw bad(`truncated header (${formatCount(bytes.length)} bytes)`);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(bytes.toString('utf8', 12, 12 + jsonLength));
  } catch {
    throw bad('unreadable header');
  }
  const start = 12 + jsonLength + ((4 - ((12 + jsonLength) % 4)) % 4);
  const payload = bytes.subarray(start);
  if (createHash('sha256').update(payload).digest('hex') !== header.sha256) throw bad('its contents do not match their checksum (truncated or damaged)');
  const values = fromLittleEndian(payload);
  try {
    parseSavedNetwork(header.run?.network, `${path}: run`); // checked by the config validator; kept as saved
  } catch (err) {
    if (err instanceof ConvlabError) throw bad(err.message.slice(path.length + 2));
    throw err;
  }
  const specs = weightSpecs(header.run.network);
  const sizes = new Map(specs.map((s) => [s.name, s.shape.reduce((a, b) => a * b, 1)]));
  const slotValues = header.slots.reduce((n, { names }) => n + names.reduce((k, name) => k + (sizes.get(name) ?? NaN), 0), 0);
  const expected = [...sizes.values()].reduce((a, b) => a + b, 0) + slotValues;
  if (values.length !== expected) throw bad(`holds ${formatCount(values.length)} values, expected ${formatCount(expected)}`);
  let offset = 0;
  const take = (n: number) => values.subarray(offset, (offset += n));
  const weights = new Map(specs.map((s) => [s.name, take(sizes.get(s.name)!)]));
  const slots = Object.fromEntries(header.slots.map(({ slot, names }) => [slot, Object.fromEntries(names.map((name) => [name, take(sizes.get(name)!)]))]));
  const { type, step } = header.state.optimizer;
  const state: TrainState = { ...header.state, optimizer: { type, step, slots } };
  return { header, weights, state };
}

export async function removeCheckpoint(dir: string): Promise<void> {
  await rm(join(dir, CHECKPOINT_FILE), { force: true });
}

function littleEndian(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
  return out;
}

function fromLittleEndian(bytes: Buffer): Float32Array {
  const out = new Float32Array(Math.floor(bytes.length / 4));
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}
