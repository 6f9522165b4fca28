/**
 * The HTTP API's contract: limits, request and response types, error codes, the request checks, and the
 * JSON Schemas of the OpenAPI document. Shared by the server (src/serve/) and the page (web/), so it
 * imports no Node module and no TensorFlow.js: only types from the model and the error base class.
 *
 *   POST /api/predict       {"pixels": [784]} | {"image": "<base64>"} | {"batch": [...]} | multipart | image/*
 *                           → Prediction | Prediction[]
 *   POST /api/activations   the same inputs → Activations | Activations[]
 *   GET  /api/model         → ModelInfo
 *   GET  /api/model.onnx    ?layout=nchw|nhwc → the model as an ONNX file (onnx-route.ts)
 *   GET  /api/mnist-subset  ?split=train&offset=0&count=1000 → MnistSubset
 *   GET  /api/openapi.json  → the OpenAPI 3.1 document
 *   GET  /healthz           → Health
 *   GET  /model/model.json, /model/weights.bin   the served model, for tf.loadLayersModel or the page
 */
import { ConvlabError } from '../errors.ts';
import { blockOutputSize, type NetworkConfig } from '../model/config.ts';

// ---------------------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------------------

/** Side of the network's input image, and its pixel count (row-major, white ink on black, like MNIST). */
export const IMAGE_SIDE = 28;
export const PIXEL_COUNT = IMAGE_SIDE * IMAGE_SIDE;

export const LIMITS = {
  /** Largest request body in bytes, JSON or multipart (a server option can change it). */
  bodyBytes: 4 * 1024 * 1024,
  /** Most inputs in one `{"batch": [...]}` to /api/predict. */
  predictBatch: 64,
  /** Most inputs in one batch to /api/activations (each answer holds about 5,000 numbers). */
  activationsBatch: 8,
  /** Most images one GET /api/mnist-subset returns (10,000 is 7.8 MB of pixels). */
  subsetCount: 10_000,
} as const;

// ---------------------------------------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------------------------------------

/** One picture: 784 pixel values in [0,1], or a PNG/JPEG (any size, preprocessed like `convlab predict`). */
export type PredictInput = { pixels: number[] } | { image: string };

/** The body of POST /api/predict and POST /api/activations. */
export type PredictRequest = PredictInput | { batch: PredictInput[] };

export interface Prediction {
  /** The most probable class. */
  class: number;
  /** softmax(logits): one probability per class, summing to 1. */
  probabilities: number[];
  /** Server time for this input: decoding + preprocessing + forward pass (a batch's time is shared equally). */
  ms: number;
}

/** What one layer produced, flattened row-major in `shape` order (height, width, channels for a conv map). */
export interface LayerActivation {
  /** `conv1`, `conv2`, `fc1`, `fc2`, `softmax`. */
  name: string;
  kind: LayerKind;
  shape: number[];
  data: number[];
}

export interface Activations extends Prediction {
  /** The 28x28 image the network received, after preprocessing. */
  input: { shape: [number, number]; data: number[] };
  /** Every layer in order: conv blocks (after pool + ReLU), dense layers (the last is the logits), softmax. */
  layers: LayerActivation[];
}

export type LayerKind = 'conv' | 'dense' | 'logits' | 'softmax';

/** One layer as GET /api/model describes it. */
export interface LayerInfo {
  name: string;
  kind: LayerKind;
  /** E.g. `conv 5x5, 16 filters, stride 1, same → max-pool 2x2 → relu`. */
  description: string;
  /** Output shape of one example, without the batch dimension. */
  outputShape: number[];
  /** Trainable numbers in this layer (weights + biases). */
  parameters: number;
}

export interface ModelInfo {
  architecture: LayerInfo[];
  /** The network config saved with the model. */
  network: NetworkConfig;
  /** Total trainable parameters. */
  parameters: number;
  /** The training config saved with the model (`userDefinedMetadata.convlab.train`), if any. */
  train: Record<string, unknown> | null;
  /** metrics.json next to the model (test accuracy, history, confusion matrix), if present. */
  metrics: Record<string, unknown> | null;
  /** Where to fetch the model: `tf.loadLayersModel(files.modelJson)` works too; `onnx` is the ONNX export (NCHW; `?layout=nhwc`). */
  files: { modelJson: string; weights: string; onnx: string };
  /** The TensorFlow.js backend the server computes on. */
  backend: string;
  limits: typeof LIMITS;
}

/** MNIST examples, compact: uint8 pixels (0..255, white ink on black) and labels, each base64-encoded. */
export interface MnistSubset {
  split: MnistSplit;
  offset: number;
  count: number;
  height: number;
  width: number;
  /** base64 of count*height*width bytes, example after example, row-major. */
  pixels: string;
  /** base64 of count bytes, the class of each example. */
  labels: string;
}

export type MnistSplit = 'train' | 'test';

export interface Health {
  status: 'ok';
  uptimeSeconds: number;
  backend: string;
  /** tf.memory().numTensors: constant across requests (a leak would show here). */
  tensors: number;
}

// ---------------------------------------------------------------------------------------------------------
// Errors: every 4xx and 5xx answer is `{"error": {"code", "message"}}`
// ---------------------------------------------------------------------------------------------------------

/** Each error code and its HTTP status. */
export const ERROR_STATUS = {
  /** The body is not valid JSON (or is empty). */
  BAD_JSON: 400,
  /** The body or query is valid JSON but not the shape the route takes. */
  BAD_REQUEST: 400,
  /** None of `pixels`, `image`, `batch`. */
  INPUT_MISSING: 400,
  /** More than one of `pixels`, `image`, `batch`. */
  INPUT_AMBIGUOUS: 400,
  PIXELS_LENGTH: 400,
  /** A pixel is not a finite number (null, a string, NaN). */
  PIXELS_NOT_NUMBER: 400,
  PIXELS_RANGE: 400,
  /** `image` is not a string of base64 (or a data: URL). */
  IMAGE_BASE64: 400,
  IMAGE_EMPTY: 400,
  /** Not a PNG or JPEG, or corrupt or truncated. */
  IMAGE_DECODE: 400,
  IMAGE_TOO_LARGE: 413,
  BATCH_EMPTY: 400,
  BATCH_TOO_LARGE: 400,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  MULTIPART_NO_FILE: 400,
  MULTIPART_TOO_MANY_FILES: 400,
  NOT_FOUND: 404,
  /** The page has not been built: run `npm run build:web` or start with `convlab serve`. */
  PAGE_NOT_BUILT: 503,
  /** A bug: the server could not answer. The message says what failed. */
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ApiErrorBody {
  error: { code: ErrorCode; message: string };
}

/** An error the server answers with `ERROR_STATUS[code]` and `{"error": {code, message}}`. */
export class ApiError extends ConvlabError {
  declare readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.status = ERROR_STATUS[code];
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code);
}

// ---------------------------------------------------------------------------------------------------------
// Request checks: pure, so the page can run them before it sends
// ---------------------------------------------------------------------------------------------------------

/** A checked input: pixels ready for the network, or image bytes still to decode (base64 checked). */
export type CheckedInput = { pixels: Float32Array } | { base64: string };

/** A checked body: one input, or a batch (answered with an array even when it holds one input). */
export type CheckedRequest = { batch: false; inputs: [CheckedInput] } | { batch: true; inputs: CheckedInput[] };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a JSON body of /api/predict or /api/activations; throws ApiError naming the first problem. */
export function checkPredictRequest(body: unknown, batchLimit: number): CheckedRequest {
  if (!isObject(body)) {
    throw new ApiError(
      'BAD_REQUEST',
      `expected a JSON object {"pixels": [...]}, {"image": "..."} or {"batch": [...]}, got ${describe(body)}`,
    );
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
    return { batch: true, inputs: batch.map((item, i) => checkInput(item, `batch[${i}]`)) };
  }
  return { batch: false, inputs: [checkInput(body, '')] };
}

function checkInput(value: unknown, where: string): CheckedInput {
  const at = (field: string) => (where ? `${where}.${field}` : field);
  if (!isObject(value)) {
    throw new ApiError('BAD_REQUEST', `${where || 'the body'} must be an object {"pixels": [...]} or {"image": "..."}, got ${describe(value)}`);
  }
  const hasPixels = 'pixels' in value, hasImage = 'image' in value;
  if (hasPixels && hasImage) throw new ApiError('INPUT_AMBIGUOUS', `${where || 'the body'} has both "pixels" and "image"; send one`);
  if (hasPixels) return { pixels: checkPixels(value.pixels, at('pixels')) };
  if (hasImage) return { base64: checkBase64(value.image, at('image')) };
  const keys = Object.keys(value);
  throw new ApiError(
    'INPUT_MISSING',
    `${where || 'the body'} has no "pixels" (784 numbers in 0..1) or "image" (base64 PNG/JPEG)` +
      (keys.length ? `; it has ${keys.slice(0, 5).map((k) => JSON.stringify(k)).join(', ')}` : ''),
  );
}

/** 784 finite numbers in [0,1] → Float32Array. */
export function checkPixels(value: unknown, where = 'pixels'): Float32Array {
  if (!Array.isArray(value)) {
    throw new ApiError('PIXELS_LENGTH', `"${where}" must be an array of ${PIXEL_COUNT} numbers, got ${describe(value)}`);
  }
  if (value.length !== PIXEL_COUNT) {
    throw new ApiError(
      'PIXELS_LENGTH',
      `"${where}" has ${value.length} values, expected ${PIXEL_COUNT} (a 28x28 image, row by row)`,
    );
  }
  const out = new Float32Array(PIXEL_COUNT);
  for (let i = 0; i < PIXEL_COUNT; i++) {
    const v = value[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ApiError('PIXELS_NOT_NUMBER', `"${where}[${i}]" is ${describe(v)}, not a number; send numbers in 0..1`);
    }
    if (v < 0 || v > 1) {
      throw new ApiError(
        'PIXELS_RANGE',
        `"${where}[${i}]" is ${v}, outside 0..1` + (v > 1 && v <= 255 ? '; divide 0..255 pixel values by 255' : ''),
      );
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
      `"${where}" is not valid base64` + (bad ? ` (character ${JSON.stringify(bad[0])} at ${bad.index})` : ' (bad length or padding)') +
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

// ---------------------------------------------------------------------------------------------------------
// The architecture, as the API and the page describe it
// ---------------------------------------------------------------------------------------------------------

/** The layers whose outputs /api/activations returns, with shapes and parameter counts, from the config. */
export function architecture(net: NetworkConfig): LayerInfo[] {
  const layers: LayerInfo[] = [];
  let h = net.input.height, w = net.input.width, c = net.input.channels;
  net.conv.forEach((b, i) => {
    const parameters = b.size * b.size * c * b.filters + b.filters;
    h = blockOutputSize(h, b);
    w = blockOutputSize(w, b);
    c = b.filters;
    const pool = b.pool === 'none' ? [] : [`${b.pool}-pool ${b.poolSize}x${b.poolSize}`];
    // the lesson pools first; configs may say otherwise (`order`, where the config has it)
    const activationFirst = (b as { order?: string }).order === 'activation-then-pool';
    const steps = activationFirst ? [b.activation, ...pool] : [...pool, b.activation];
    layers.push({
      name: `conv${i + 1}`,
      kind: 'conv',
      description: [`conv ${b.size}x${b.size}, ${b.filters} filters, stride ${b.stride}, ${b.padding}`, ...steps].join(' → '),
      outputShape: [h, w, c],
      parameters,
    });
  });
  let features = h * w * c;
  net.dense.forEach((d, j) => {
    const last = j === net.dense.length - 1;
    const activation = d.activation === 'linear' ? (last ? ' (logits)' : '') : ` → ${d.activation}`;
    layers.push({
      name: `fc${j + 1}`,
      kind: last ? 'logits' : 'dense',
      description: `fully connected ${features} → ${d.units}${activation}`,
      outputShape: [d.units],
      parameters: features * d.units + d.units,
    });
    features = d.units;
  });
  layers.push({ name: 'softmax', kind: 'softmax', description: 'softmax: class probabilities', outputShape: [features], parameters: 0 });
  return layers;
}

// ---------------------------------------------------------------------------------------------------------
// JSON Schemas, for the OpenAPI document
// ---------------------------------------------------------------------------------------------------------

const numberArray = (n?: number) => ({ type: 'array', items: { type: 'number' }, ...(n ? { minItems: n, maxItems: n } : {}) });

export const jsonSchemas = {
  PixelsInput: {
    type: 'object',
    required: ['pixels'],
    properties: {
      pixels: {
        type: 'array',
        minItems: PIXEL_COUNT,
        maxItems: PIXEL_COUNT,
        items: { type: 'number', minimum: 0, maximum: 1 },
        description: '28x28 pixels, row-major, white ink (1) on black (0), as MNIST divided by 255',
      },
    },
  },
  ImageInput: {
    type: 'object',
    required: ['image'],
    properties: {
      image: {
        type: 'string',
        contentEncoding: 'base64',
        description: 'a PNG or JPEG file, base64 (a data: URL works too); any size, dark-on-light or light-on-dark',
      },
    },
  },
  PredictInput: { oneOf: [{ $ref: '#/components/schemas/PixelsInput' }, { $ref: '#/components/schemas/ImageInput' }] },
  BatchInput: {
    type: 'object',
    required: ['batch'],
    properties: { batch: { type: 'array', minItems: 1, items: { $ref: '#/components/schemas/PredictInput' } } },
  },
  PredictRequest: { oneOf: [{ $ref: '#/components/schemas/PredictInput' }, { $ref: '#/components/schemas/BatchInput' }] },
  Prediction: {
    type: 'object',
    required: ['class', 'probabilities', 'ms'],
    properties: {
      class: { type: 'integer', minimum: 0 },
      probabilities: numberArray(),
      ms: { type: 'number', description: 'server time for this input, milliseconds' },
    },
  },
  LayerActivation: {
    type: 'object',
    required: ['name', 'kind', 'shape', 'data'],
    properties: {
      name: { type: 'string' },
      kind: { enum: ['conv', 'dense', 'logits', 'softmax'] },
      shape: { type: 'array', items: { type: 'integer' } },
      data: { ...numberArray(), description: 'row-major in shape order (height, width, channel for conv maps)' },
    },
  },
  Activations: {
    allOf: [
      { $ref: '#/components/schemas/Prediction' },
      {
        type: 'object',
        required: ['input', 'layers'],
        properties: {
          input: { type: 'object', properties: { shape: numberArray(2), data: numberArray(PIXEL_COUNT) } },
          layers: { type: 'array', items: { $ref: '#/components/schemas/LayerActivation' } },
        },
      },
    ],
  },
  ModelInfo: {
    type: 'object',
    required: ['architecture', 'network', 'parameters', 'files', 'backend', 'limits'],
    properties: {
      architecture: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            kind: { type: 'string' },
            description: { type: 'string' },
            outputShape: { type: 'array', items: { type: 'integer' } },
            parameters: { type: 'integer' },
          },
        },
      },
      network: { type: 'object' },
      parameters: { type: 'integer' },
      train: { type: ['object', 'null'] },
      metrics: { type: ['object', 'null'] },
      files: { type: 'object', properties: { modelJson: { type: 'string' }, weights: { type: 'string' }, onnx: { type: 'string' } } },
      backend: { type: 'string' },
      limits: { type: 'object' },
    },
  },
  MnistSubset: {
    type: 'object',
    required: ['split', 'offset', 'count', 'height', 'width', 'pixels', 'labels'],
    properties: {
      split: { enum: ['train', 'test'] },
      offset: { type: 'integer' },
      count: { type: 'integer' },
      height: { type: 'integer' },
      width: { type: 'integer' },
      pixels: { type: 'string', contentEncoding: 'base64', description: 'count*height*width uint8, 0..255' },
      labels: { type: 'string', contentEncoding: 'base64', description: 'count uint8 class labels' },
    },
  },
  Health: {
    type: 'object',
    properties: {
      status: { const: 'ok' },
      uptimeSeconds: { type: 'number' },
      backend: { type: 'string' },
      tensors: { type: 'integer' },
    },
  },
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: { enum: Object.keys(ERROR_STATUS) }, message: { type: 'string' } },
      },
    },
  },
} as const;

/** The OpenAPI 3.1 document of this API. */
export function openApiDocument(version: string): Record<string, unknown> {
  const ref = (name: keyof typeof jsonSchemas) => ({ $ref: `#/components/schemas/${name}` });
  const json = (schema: unknown) => ({ 'application/json': { schema } });
  const errors = {
    '400': { description: 'bad input (see error.code)', content: json(ref('Error')) },
    '413': { description: 'body, image or batch too large', content: json(ref('Error')) },
    '415': { description: 'unsupported content type', content: json(ref('Error')) },
  };
  const inputBody = (batchLimit: number) => ({
    required: true,
    description: `one input, or {"batch": [...]} of up to ${batchLimit}; or a multipart upload of one image file; or the raw bytes as image/png or image/jpeg`,
    content: {
      ...json(ref('PredictRequest')),
      'multipart/form-data': { schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } } } },
      'image/png': { schema: { type: 'string', format: 'binary' } },
      'image/jpeg': { schema: { type: 'string', format: 'binary' } },
    },
  });
  const oneOrMany = (name: keyof typeof jsonSchemas) => ({ oneOf: [ref(name), { type: 'array', items: ref(name) }] });
  return {
    openapi: '3.1.0',
    info: {
      title: 'convlab',
      version,
      description: 'A convolutional network for MNIST digits: classify a 28x28 image or a picture, and look inside the network.',
    },
    paths: {
      '/api/predict': {
        post: {
          summary: 'Classify a digit',
          requestBody: inputBody(LIMITS.predictBatch),
          responses: { '200': { description: 'a prediction (an array for a batch)', content: json(oneOrMany('Prediction')) }, ...errors },
        },
      },
      '/api/activations': {
        post: {
          summary: 'Classify a digit and return every layer\'s output',
          requestBody: inputBody(LIMITS.activationsBatch),
          responses: { '200': { description: 'activations (an array for a batch)', content: json(oneOrMany('Activations')) }, ...errors },
        },
      },
      '/api/model': { get: { summary: 'Architecture, config and metrics', responses: { '200': { description: 'the model', content: json(ref('ModelInfo')) } } } },
      '/api/mnist-subset': {
        get: {
          summary: 'MNIST examples for training in the browser',
          parameters: [
            { name: 'split', in: 'query', schema: { enum: ['train', 'test'], default: 'train' } },
            { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
            { name: 'count', in: 'query', schema: { type: 'integer', minimum: 1, maximum: LIMITS.subsetCount, default: 1000 } },
          ],
          responses: { '200': { description: 'pixels and labels', content: json(ref('MnistSubset')) }, '400': errors['400'] },
        },
      },
      '/api/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
      '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'ok', content: json(ref('Health')) } } } },
      '/model/model.json': { get: { summary: 'The model in the TensorFlow.js layers-model format', responses: { '200': { description: 'model.json' } } } },
      '/model/weights.bin': { get: { summary: 'Its weights, float32 little-endian', responses: { '200': { description: 'weights.bin' } } } },
      '/api/model.onnx': { get: { summary: 'The model as ONNX (opset 13)', parameters: [{ name: 'layout', in: 'query', schema: { enum: ['nchw', 'nhwc'], default: 'nchw' } }], responses: { '200': { description: 'model.onnx' }, '400': errors['400'] } } },
    },
    components: { schemas: jsonSchemas },
  };
}
