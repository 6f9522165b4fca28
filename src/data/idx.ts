/**
 * The IDX file format (LeCun's MNIST files): a pure parser and writer, plus thin fs wrappers.
 *
 *   bytes 0-1   0x00 0x00
 *   byte  2     element type (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
 *   byte  3     number of dimensions d
 *   4 .. 4+4d   d sizes, big-endian uint32
 *   then        the elements, row-major, big-endian
 *
 * See http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS FOR THE MNIST DATABASE").
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataFormatError, formatCount } from '../errors.ts';
import { UNIT_SCALE, bytesToFloats, type LabeledBytes, type LabeledImages } from './images.ts';

export { UNIT_SCALE };
export type { LabeledBytes, LabeledImages };

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A decoded IDX file: `data` is row-major with `shape`, in native byte order. */
export interface IdxTensor {
  dtype: IdxDtype;
  shape: number[];
  data: IdxData;
}

/** One row per dtype: its type byte, element size, and typed-array constructor. */
const DTYPES = {
  uint8: { code: 0x08, bytes: 1, array: Uint8Array },
  int8: { code: 0x09, bytes: 1, array: Int8Array },
  int16: { code: 0x0b, bytes: 2, array: Int16Array },
  int32: { code: 0x0c, bytes: 4, array: Int32Array },
  float32: { code: 0x0d, bytes: 4, array: Float32Array },
  float64: { code: 0x0e, bytes: 8, array: Float64Array },
} as const;

const DTYPE_BY_CODE = new Map<number, IdxDtype>((Object.keys(DTYPES) as IdxDtype[]).map((dtype) => [DTYPES[dtype].code, dtype]));

const HEADER_BYTES = 4; // magic (2) + type (1) + dims (1), before the sizes

// IDX is big-endian; typed arrays use the platform's order (little-endian on every machine we run on).
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const hex = (bytes: Uint8Array): string => '0x' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** `[60000, 28, 28]` → `60000x28x28`; a 0-d tensor is a `scalar`. */
const formatShape = (shape: number[]): string => (shape.length === 0 ? 'scalar' : shape.join('x'));

const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * Decodes an IDX file. `fileName` only appears in error messages.
 * uint8 and int8 data are views into `bytes` (no copy); wider types are copied and byte-swapped.
 */
export function parseIdx(bytes: Uint8Array, fileName: string): IdxTensor {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    throw new DataFormatError(
      'IDX_BAD_MAGIC',
      `${fileName}: not an IDX file (magic bytes ${hex(bytes.subarray(0, 4))}; a gzip file? decompress it with gunzip first)`,
    );
  }
  if (bytes.length < HEADER_BYTES) {
    throw new DataFormatError(
      'IDX_TRUNCATED',
      `${fileName}: expected at least ${formatCount(HEADER_BYTES)} bytes of IDX header, got ${formatCount(bytes.length)} — the file is truncated; download it again`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataFormatError(
      'IDX_BAD_MAGIC',
      `${fileName}: not an IDX file (magic bytes ${hex(bytes.subarray(0, 4))}; an IDX file starts with 0x0000 then a type byte) — check the path`,
    );
  }
  const dtype = DTYPE_BY_CODE.get(bytes[2]);
  if (dtype === undefined) {
    throw new DataFormatError(
      'IDX_UNSUPPORTED_TYPE',
      `${fileName}: unsupported IDX element type 0x${bytes[2].toString(16).padStart(2, '0')} ` +
        `(supported: 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32, 0x0e float64) — is it really an IDX file?`,
    );
  }
  const dims = bytes[3];
  const dataOffset = HEADER_BYTES + 4 * dims;
  if (bytes.length < dataOffset) {
    throw new DataFormatError(
      'IDX_TRUNCATED',
      `${fileName}: expected ${formatCount(dataOffset)} bytes of header for ${dims} dimensions, got ${formatCount(bytes.length)} — the file is truncated; download it again`,
    );
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset, dataOffset);
  const shape: number[] = [];
  for (let i = 0; i < dims; i++) shape.push(view.getUint32(HEADER_BYTES + 4 * i, false));

  const { bytes: elementBytes, array } = DTYPES[dtype];
  const length = product(shape);
  const expected = dataOffset + length * elementBytes;
  const what = `${formatShape(shape)} ${dtype}`;
  if (bytes.length < expected) {
    throw new DataFormatError(
      'IDX_TRUNCATED',
      `${fileName}: expected ${formatCount(expected)} bytes for ${what}, got ${formatCount(bytes.length)} — the file is truncated; download it again`,
    );
  }
  if (bytes.length > expected) {
    throw new DataFormatError(
      'IDX_TRAILING_BYTES',
      `${fileName}: expected ${formatCount(expected)} bytes for ${what}, got ${formatCount(bytes.length)} ` +
        `(${formatCount(bytes.length - expected)} extra) — the file is corrupt or not what its header says; download it again`,
    );
  }

  const raw = bytes.subarray(dataOffset, expected);
  if (elementBytes === 1) {
    // A plain view, even when `bytes` is a Node Buffer, so callers see the documented type.
    const data = dtype === 'uint8' ? new Uint8Array(raw.buffer, raw.byteOffset, raw.length) : new Int8Array(raw.buffer, raw.byteOffset, raw.length);
    return { dtype, shape, data };
  }
  // Copy into a fresh (aligned) buffer, then swap each element's bytes into native order.
  const copy = raw.slice();
  if (LITTLE_ENDIAN) reverseEachElement(copy, elementBytes);
  return { dtype, shape, data: new array(copy.buffer, 0, length) };
}

/** The inverse of `parseIdx`: header plus big-endian data. */
export function encodeIdx(t: IdxTensor): Uint8Array {
  const { code, bytes: elementBytes, array } = DTYPES[t.dtype];
  if (!(t.data instanceof array)) {
    throw new DataFormatError(
      'IDX_BAD_SHAPE',
      `encodeIdx: dtype ${t.dtype} needs a ${array.name}, got a ${t.data.constructor.name} — convert the data or change the dtype`,
    );
  }
  if (t.shape.length > 255 || t.shape.some((d) => !Number.isInteger(d) || d < 0 || d > 0xffffffff)) {
    throw new DataFormatError('IDX_BAD_SHAPE', `encodeIdx: shape [${t.shape.join(', ')}] cannot be stored in IDX (at most 255 dimensions, each a uint32)`);
  }
  if (product(t.shape) !== t.data.length) {
    throw new DataFormatError(
      'IDX_BAD_SHAPE',
      `encodeIdx: shape ${formatShape(t.shape)} holds ${formatCount(product(t.shape))} elements, data has ${formatCount(t.data.length)} — fix the shape`,
    );
  }

  const dataOffset = HEADER_BYTES + 4 * t.shape.length;
  const out = new Uint8Array(dataOffset + t.data.byteLength);
  const view = new DataView(out.buffer, 0, dataOffset);
  out[2] = code;
  out[3] = t.shape.length;
  t.shape.forEach((d, i) => view.setUint32(HEADER_BYTES + 4 * i, d, false));

  const body = out.subarray(dataOffset);
  body.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  if (LITTLE_ENDIAN && elementBytes > 1) reverseEachElement(body, elementBytes);
  return out;
}

/** Reverses the byte order of every `size`-byte element in place (big-endian ↔ little-endian). */
function reverseEachElement(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const tmp = bytes[lo];
      bytes[lo] = bytes[hi];
      bytes[hi] = tmp;
    }
  }
}

/**
 * Reads and parses an IDX file; a missing file is a `DataFormatError` with code `FILE_NOT_FOUND`.
 * A file named `*.gz` is decompressed first (Fashion-MNIST, KMNIST and EMNIST are distributed gzipped).
 */
export function readIdxFile(path: string): IdxTensor {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataFormatError('FILE_NOT_FOUND', `${path}: no such file — check the path (or download the data set)`, {
        cause: err,
      });
    }
    throw err;
  }
  if (path.endsWith('.gz') && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      throw new DataFormatError('IDX_TRUNCATED', `${path}: cannot decompress (${(err as Error).message}) — the download is incomplete; download it again`, {
        cause: err,
      });
    }
  }
  return parseIdx(bytes, path);
}

/**
 * Pairs an images file (uint8, N×H×W or N×H×W×C) with a labels file (uint8, N) and scales pixels to [0,1].
 */
export function loadIdxPair(imagesPath: string, labelsPath: string): LabeledImages {
  const { bytes, ...rest } = readIdxPair(imagesPath, labelsPath);
  return { ...rest, images: bytesToFloats(bytes) };
}

/** The same pair with the pixels kept as the file's bytes (a view into the file, no copy). */
export function readIdxPair(imagesPath: string, labelsPath: string): LabeledBytes {
  const images = readIdxFile(imagesPath);
  const labels = readIdxFile(labelsPath);

  if (images.dtype !== 'uint8' || (images.shape.length !== 3 && images.shape.length !== 4)) {
    throw new DataFormatError(
      'IDX_BAD_SHAPE',
      `${imagesPath}: expected uint8 images of shape NxHxW or NxHxWxC, got ${formatShape(images.shape)} ${images.dtype} — is this an images file?`,
    );
  }
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1) {
    throw new DataFormatError(
      'IDX_BAD_SHAPE',
      `${labelsPath}: expected uint8 labels of shape N, got ${formatShape(labels.shape)} ${labels.dtype} — is this a labels file?`,
    );
  }
  const [count, height, width, channels = 1] = images.shape;
  if (labels.shape[0] !== count) {
    throw new DataFormatError(
      'IDX_COUNT_MISMATCH',
      `${imagesPath} has ${formatCount(count)} images but ${labelsPath} has ${formatCount(labels.shape[0])} labels — ` +
        `the files do not belong together; check that both come from the same split (train or t10k)`,
    );
  }

  return { bytes: images.data as Uint8Array, labels: labels.data as Uint8Array, count, height, width, channels };
}
