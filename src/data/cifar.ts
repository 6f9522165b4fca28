/**
 * CIFAR-10, binary version (https://www.cs.toronto.edu/~kriz/cifar.html, `cifar-10-binary.tar.gz`), which
 * the user downloads and extracts. The folder holds `data_batch_1.bin` … `data_batch_5.bin` (training) and
 * `test_batch.bin`, each a run of 3,073-byte records:
 *
 *   byte 0        the label, 0..9 (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck)
 *   bytes 1..     a 32x32 colour image as three planes: 1,024 red bytes, 1,024 green, 1,024 blue, row-major
 *
 * convlab stores images as NHWC (pixel by pixel, R G B together): the training and validation splits as
 * bytes (154 MB for 50,000 images; floats would be 614 MB), converted a batch at a time; the test split as
 * floats in [0,1].
 * Split: validation = the last 5,000 records of data_batch_5.bin (the last half of that file, when it is
 * smaller), train = everything before them (45,000), test = test_batch.bin (10,000).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataFormatError, formatCount } from '../errors.ts';
import { toFloats, type LabeledBytes, type LabeledImages } from './images.ts';

export const CIFAR_SIDE = 32;
export const CIFAR_CHANNELS = 3;
const PLANE = CIFAR_SIDE * CIFAR_SIDE; // 1,024
export const CIFAR_RECORD_BYTES = 1 + CIFAR_CHANNELS * PLANE; // 3,073
export const CIFAR_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
export const CIFAR_TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR_TEST_FILE = 'test_batch.bin';
/** Records of data_batch_5.bin kept for validation (at most half the file). */
export const CIFAR_VALIDATION_SIZE = 5000;

/** Records in a CIFAR-10 file of `bytes` bytes; CIFAR_RECORD_LENGTH when it is not a whole number. */
export function cifarRecordCount(bytes: Uint8Array, fileName: string): number {
  if (bytes.length === 0 || bytes.length % CIFAR_RECORD_BYTES !== 0) {
    const hint =
      bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b
        ? ' (it is gzip-compressed: extract cifar-10-binary.tar.gz with `tar xzf`)'
        : bytes.length > 0 && bytes.length % (CIFAR_RECORD_BYTES + 1) === 0
          ? ' (it divides into 3,074-byte records: is this CIFAR-100, which has two label bytes?)'
          : ' — is this the binary version (cifar-10-binary.tar.gz), not the Python or MATLAB one?';
    throw new DataFormatError(
      'CIFAR_RECORD_LENGTH',
      `${fileName}: ${formatCount(bytes.length)} bytes is not a whole number of ${formatCount(CIFAR_RECORD_BYTES)}-byte records (1 label byte + 32x32x3 pixels)${hint}`,
    );
  }
  return bytes.length / CIFAR_RECORD_BYTES;
}

/**
 * Decodes every record of `bytes` into `out` starting at example `at`. Typed errors: CIFAR_RECORD_LENGTH
 * (not a whole number of records), CIFAR_LABEL_RANGE (a label above 9).
 */
function decodeInto(bytes: Uint8Array, fileName: string, out: LabeledBytes, at: number): number {
  const count = cifarRecordCount(bytes, fileName);
  for (let n = 0; n < count; n++) {
    const record = n * CIFAR_RECORD_BYTES;
    const label = bytes[record];
    if (label >= CIFAR_CLASSES.length) {
      throw new DataFormatError(
        'CIFAR_LABEL_RANGE',
        `${fileName}: record ${formatCount(n)} has label ${label}, but CIFAR-10 labels are 0 to 9 — the file is damaged or not CIFAR-10; download it again`,
      );
    }
    out.labels[at + n] = label;
    // planes R, G, B → interleaved HWC
    const base = (at + n) * PLANE * CIFAR_CHANNELS;
    for (let c = 0; c < CIFAR_CHANNELS; c++) {
      const plane = record + 1 + c * PLANE;
      for (let p = 0; p < PLANE; p++) out.bytes[base + p * CIFAR_CHANNELS + c] = bytes[plane + p];
    }
  }
  return count;
}

function empty(count: number): LabeledBytes {
  return {
    bytes: new Uint8Array(count * PLANE * CIFAR_CHANNELS),
    labels: new Uint8Array(count),
    count,
    height: CIFAR_SIDE,
    width: CIFAR_SIDE,
    channels: CIFAR_CHANNELS,
  };
}

/** Decodes one CIFAR-10 file's records, keeping the pixels as bytes. `fileName` only appears in error messages. */
export function parseCifarBytes(bytes: Uint8Array, fileName: string): LabeledBytes {
  const out = empty(cifarRecordCount(bytes, fileName));
  decodeInto(bytes, fileName, out, 0);
  return out;
}

/** Decodes one CIFAR-10 file's records, pixels scaled to [0,1]. */
export function parseCifar(bytes: Uint8Array, fileName: string): LabeledImages {
  return toFloats(parseCifarBytes(bytes, fileName));
}

/** The inverse of `parseCifar` for pixel values that are multiples of 1/255 (used to write test files). */
export function encodeCifar(data: LabeledImages): Uint8Array {
  const out = new Uint8Array(data.count * CIFAR_RECORD_BYTES);
  for (let n = 0; n < data.count; n++) {
    const at = n * CIFAR_RECORD_BYTES;
    out[at] = data.labels[n];
    for (let c = 0; c < CIFAR_CHANNELS; c++) {
      for (let p = 0; p < PLANE; p++) out[at + 1 + c * PLANE + p] = Math.round(255 * data.images[(n * PLANE + p) * CIFAR_CHANNELS + c]);
    }
  }
  return out;
}

/** The folder that holds the .bin files: `dir` itself, or the `cifar-10-batches-bin` the archive extracts to. */
export function cifarFolder(dir: string): string {
  if (!existsSync(join(dir, CIFAR_TRAIN_FILES[0])) && existsSync(join(dir, 'cifar-10-batches-bin', CIFAR_TRAIN_FILES[0]))) {
    return join(dir, 'cifar-10-batches-bin');
  }
  return dir;
}

export interface CifarSplits {
  /** As bytes (converted a batch at a time). */
  train: LabeledBytes;
  validation: LabeledBytes;
  test: LabeledImages;
}

/** Loads and splits CIFAR-10 from `dir` (see the file comment for the split). */
export function loadCifar10(dir: string): CifarSplits {
  const folder = cifarFolder(dir);
  const missing = [...CIFAR_TRAIN_FILES, CIFAR_TEST_FILE].filter((f) => !existsSync(join(folder, f)));
  if (missing.length > 0) {
    const archive = existsSync(join(dir, 'cifar-10-binary.tar.gz'))
      ? `extract it first: tar xzf ${join(dir, 'cifar-10-binary.tar.gz')} -C ${dir}`
      : 'download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it there';
    throw new DataFormatError('FILE_NOT_FOUND', `${folder}: missing ${missing.join(', ')} — ${archive}`);
  }
  // One byte array for all training files, filled one file at a time (each file's buffer is dropped after
  // decoding): the sizes give the record counts before anything is read.
  const files = CIFAR_TRAIN_FILES.map((f) => join(folder, f));
  const counts = files.map((name) => {
    const size = statSync(name).size;
    // not whole records: read the file for the message that says what it is instead
    return size > 0 && size % CIFAR_RECORD_BYTES === 0 ? size / CIFAR_RECORD_BYTES : cifarRecordCount(readFileSync(name), name);
  });
  const all = empty(counts.reduce((a, b) => a + b, 0));
  let at = 0;
  files.forEach((name, i) => {
    const bytes = readFileSync(name);
    if (bytes.length !== counts[i] * CIFAR_RECORD_BYTES) throw new DataFormatError('CIFAR_RECORD_LENGTH', `${name}: changed while it was being read`);
    at += decodeInto(bytes, name, all, at);
  });
  const held = Math.min(CIFAR_VALIDATION_SIZE, Math.floor(counts[counts.length - 1] / 2));
  if (held < 1) {
    throw new DataFormatError(
      'CIFAR_RECORD_LENGTH',
      `${files[files.length - 1]}: has ${counts[counts.length - 1]} record(s); need at least 2 to split off a validation set`,
    );
  }
  const trainCount = all.count - held;
  const size = PLANE * CIFAR_CHANNELS;
  const testFile = join(folder, CIFAR_TEST_FILE);
  return {
    train: { ...all, bytes: all.bytes.subarray(0, trainCount * size), labels: all.labels.subarray(0, trainCount), count: trainCount },
    validation: { ...all, bytes: all.bytes.subarray(trainCount * size), labels: all.labels.subarray(trainCount), count: held },
    test: parseCifar(readFileSync(testFile), testFile),
  };
}
