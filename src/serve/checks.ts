/**
 * The request checks a JSON Schema cannot say: pixels into a Float32Array with a message naming the first
 * bad value (and the 0..255 hint), base64 that decodes, and query bounds that depend on the data. They are
 * also the explanation of a request the route schema rejected (see validation.ts), so every error body
 * names the first problem in words. Pure, so the page can run them before it sends.
 */
import { ApiError, IMAGE_SIDE, LIMITS, type MnistSplit } from './schema.ts';

/** A checked input: pixels ready for the network, or image bytes still to decode (base64 checked). */
export type CheckedInput = { pixels: Float32Array } | { base64: string };

/** A checked body: one input, or a batch (answered with an array even when it holds one input). */
export type CheckedRequest = { batch: false; inputs: [CheckedInput] } | { batch: true; inputs: CheckedInput[] };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The served model's input; pixels are checked against it (28x28x1 unless told). */
export interface InputShape {
  height: number;
  width: number;
  channels: number;
}
const DIGIT: InputShape = { height: IMAGE_SIDE, width: IMAGE_SIDE, channels: 1 };
const countOf = (s: InputShape) => s.height * s.width * s.channels;

/** Checks a JSON body of /api/predict or /api/activations; throws ApiError naming the first problem. */
export function checkPredictRequest(body: unknown, batchLimit: number, shape: InputShape = DIGIT): CheckedRequest {
  if (!isObject(body)) {
    throw new ApiError('BAD_REQUEST', `expected a JSON object {"pixels": [...]}, {"image": "..."} or {"batch": [...]}, got ${describe(body)}`);
  }
  if ('batch' in body) {
    if ('pixels' in body || 'image' in body) {
      throw new ApiError('INPUT_AMBIGUOUS', 'send either "batch" or a single "pixels"/"image", not both');
    }
    const batch = body.batch;
    if (!Array.isArray(batch)) throw new ApiError('BAD_REQUEST', `"batch" must be an array of inputs, got ${describe(batch)}`);
    if (batch.length === 0) throw new ApiError('BATCH_EMPTY', '"batch" is empty; send at least one input');
    if (batch.length > batchLimit) {
      throw new ApiError(
        'BATCH_TOO_LARGE',
        `"batch" has ${batch.length} inputs, over the limit of ${batchLimit} for this route; split it into smaller batches`,
      );
    }
    return { batch: true, inputs: batch.map((item, i) => checkInput(item, `batch[${i}]`, shape)) };
  }
  return { batch: false, inputs: [checkInput(body, '', shape)] };
}

function checkInput(value: unknown, where: string, shape: InputShape): CheckedInput {
  const at = (field: string) => (where ? `${where}.${field}` : field);
  if (!isObject(value)) {
    throw new ApiError('BAD_REQUEST', `${where || 'the body'} must be an object {"pixels": [...]} or {"image": "..."}, got ${describe(value)}`);
  }
  const hasPixels = 'pixels' in value,
    hasImage = 'image' in value;
  if (hasPixels && hasImage) throw new ApiError('INPUT_AMBIGUOUS', `${where || 'the body'} has both "pixels" and "image"; send one`);
  if (hasPixels) return { pixels: checkPixels(value.pixels, at('pixels'), shape) };
  if (hasImage) return { base64: checkBase64(value.image, at('image')) };
  const keys = Object.keys(value);
  throw new ApiError(
    'INPUT_MISSING',
    `${where || 'the body'} has no "pixels" (${countOf(shape)} numbers in 0..1) or "image" (base64 PNG/JPEG)` +
      (keys.length
        ? `; it has ${keys
            .slice(0, 5)
            .map((k) => JSON.stringify(k))
            .join(', ')}`
        : ''),
  );
}

/** The input's values (784 for a 28x28 digit, height×width×channels for the served model): finite, in [0,1] → Float32Array. */
export function checkPixels(value: unknown, where = 'pixels', shape: InputShape = DIGIT): Float32Array {
  const count = countOf(shape);
  if (!Array.isArray(value)) {
    throw new ApiError('PIXELS_LENGTH', `"${where}" must be an array of ${count} numbers, got ${describe(value)}`);
  }
  if (value.length !== count) {
    const image =
      shape.channels === 1
        ? `a ${shape.height}x${shape.width} image, row by row`
        : `a ${shape.height}x${shape.width}x${shape.channels} image, row by row, the ${shape.channels} channels of each pixel together`;
    throw new ApiError('PIXELS_LENGTH', `"${where}" has ${value.length} values, expected ${count} (${image})`);
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = value[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ApiError('PIXELS_NOT_NUMBER', `"${where}[${i}]" is ${describe(v)}, not a number; send numbers in 0..1`);
    }
    if (v < 0 || v > 1) {
      throw new ApiError('PIXELS_RANGE', `"${where}[${i}]" is ${v}, outside 0..1` + (v > 1 && v <= 255 ? '; divide 0..255 pixel values by 255' : ''));
    }
    out[i] = v;
  }
  return out;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64_URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** A base64 string (standard or URL-safe, padded or not, optionally a `data:image/...;base64,` URL) → its payload. */
export function checkBase64(value: unknown, where = 'image'): string {
  if (typeof value !== 'string') {
    throw new ApiError('IMAGE_BASE64', `"${where}" must be a base64 string of a PNG or JPEG file, got ${describe(value)}`);
  }
  let s = value;
  const dataUrl = /^data:([^,]*?),/.exec(s.slice(0, 200));
  if (dataUrl) {
    if (!dataUrl[1].endsWith(';base64')) {
      throw new ApiError('IMAGE_BASE64', `"${where}" is a data: URL that is not base64-encoded; use ";base64," data`);
    }
    s = s.slice(dataUrl[0].length);
  }
  s = s.replace(/\s+/g, '');
  if (s.length === 0) throw new ApiError('IMAGE_EMPTY', `"${where}" is empty; send the bytes of a PNG or JPEG file, base64-encoded`);
  if (!(BASE64.test(s) || BASE64_URL.test(s)) || s.replace(/=+$/, '').length % 4 === 1) {
    const bad = /[^A-Za-z0-9+/=_-]/.exec(s);
    throw new ApiError(
      'IMAGE_BASE64',
      `"${where}" is not valid base64` +
        (bad ? ` (character ${JSON.stringify(bad[0])} at ${bad.index})` : ' (bad length or padding)') +
        '; encode the file bytes with base64 (e.g. `base64 -w0 digit.png`)',
    );
  }
  return s;
}

/** `count`, `offset` and `split` of GET /api/mnist-subset, checked, with defaults. */
export function checkSubsetQuery(query: unknown, available: (split: MnistSplit) => number): { split: MnistSplit; offset: number; count: number } {
  const q = isObject(query) ? query : {};
  const split = q.split ?? 'train';
  if (split !== 'train' && split !== 'test') {
    throw new ApiError('BAD_REQUEST', `split must be "train" or "test", got ${JSON.stringify(split)}`);
  }
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = q[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new ApiError('BAD_REQUEST', `${name} must be a whole number in ${min}..${max}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
  const total = available(split);
  const count = int('count', 1000, 1, Math.min(LIMITS.subsetCount, total));
  const offset = int('offset', 0, 0, total - count);
  return { split, offset, count };
}

function describe(v: unknown): string {
  if (v === undefined) return 'no body';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return v.length > 20 ? `a string of ${v.length} characters` : `the string ${JSON.stringify(v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}
