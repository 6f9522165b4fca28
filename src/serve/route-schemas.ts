/**
 * The API's contract as JSON Schema, declared once: Fastify validates each request with its route's schema
 * (validation.ts), and @fastify/swagger builds /api/openapi.json from the same objects (openapi.ts). Shared
 * schemas carry an `$id` and are referenced as `{ $ref: 'Name#' }`; they become `components.schemas.Name`.
 *
 * What a schema cannot say (base64 that decodes to an image, a friendly message for the first bad pixel,
 * query bounds that depend on the data) is in checks.ts; a body the schema rejects is explained by those
 * checks, so error messages name the problem in words, not in schema paths.
 */
import { ERROR_STATUS, LIMITS, PIXEL_COUNT } from './schema.ts';

/** The wasm binaries the page's TensorFlow.js wasm backend fetches (setWasmPaths('/tfjs-wasm/')). */
export const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/** Marks a body schema that documents a content type Fastify does not parse as JSON: never validated. */
export const DOCS_ONLY = 'x-docs-only';

const ref = (id: string) => ({ $ref: `${id}#` });
const numberArray = (n?: number) => ({ type: 'array', items: { type: 'number' }, ...(n ? { minItems: n, maxItems: n } : {}) });

/** Schemas shared between routes, registered with `app.addSchema`. */
export const sharedSchemas = [
  {
    $id: 'PixelsInput',
    type: 'object',
    required: ['pixels'],
    not: { anyOf: [{ required: ['image'] }, { required: ['batch'] }] },
    properties: {
      pixels: {
        type: 'array',
        items: { type: 'number', minimum: 0, maximum: 1 },
        description:
          '28x28 pixels, row-major, white ink (1) on black (0), as MNIST divided by 255; for a colour model, height x width x 3 ' +
          'values (32x32x3 = 3,072 for CIFAR-10), RGB per pixel. The count is checked against the served model (PIXELS_LENGTH)',
      },
    },
  },
  {
    $id: 'ImageInput',
    type: 'object',
    required: ['image'],
    not: { anyOf: [{ required: ['pixels'] }, { required: ['batch'] }] },
    properties: {
      image: {
        type: 'string',
        minLength: 1,
        contentEncoding: 'base64',
        description: 'a PNG or JPEG file, base64 (a data: URL works too); any size, dark-on-light or light-on-dark',
      },
    },
  },
  { $id: 'PredictInput', oneOf: [ref('PixelsInput'), ref('ImageInput')] },
  {
    $id: 'Prediction',
    type: 'object',
    required: ['class', 'probabilities', 'ms'],
    properties: {
      class: { type: 'integer', minimum: 0, description: 'the most probable class' },
      probabilities: { ...numberArray(), description: 'softmax(logits), one per class' },
      ms: { type: 'number', description: 'server time for this input, milliseconds' },
    },
  },
  {
    $id: 'LayerActivation',
    type: 'object',
    required: ['name', 'kind', 'shape', 'data'],
    properties: {
      name: { type: 'string' },
      kind: { enum: ['conv', 'dense', 'logits', 'softmax'] },
      shape: { type: 'array', items: { type: 'integer' } },
      data: { ...numberArray(), description: 'row-major in shape order (height, width, channel for conv maps)' },
    },
  },
  {
    $id: 'Activations',
    allOf: [
      ref('Prediction'),
      {
        type: 'object',
        required: ['input', 'layers'],
        properties: {
          input: { type: 'object', properties: { shape: numberArray(2), data: numberArray(PIXEL_COUNT) } },
          layers: { type: 'array', items: ref('LayerActivation') },
        },
      },
    ],
  },
  {
    $id: 'ModelInfo',
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
  {
    $id: 'MnistSubset',
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
  {
    $id: 'Health',
    type: 'object',
    required: ['status', 'uptimeSeconds', 'backend', 'tensors', 'predict'],
    properties: {
      status: { const: 'ok' },
      uptimeSeconds: { type: 'number' },
      backend: { type: 'string' },
      tensors: { type: 'integer', description: 'tf.memory().numTensors of the main thread: flat across requests' },
      predict: {
        type: 'object',
        description: '/api/predict forward passes and images so far; images / passes is the mean batch (to tune --batch-window)',
        properties: { passes: { type: 'integer' }, images: { type: 'integer' } },
      },
    },
  },
  {
    $id: 'Ready',
    type: 'object',
    required: ['ready', 'workers'],
    properties: {
      ready: { type: 'boolean', description: 'false while starting or draining: a load balancer should send elsewhere' },
      workers: { type: 'integer', description: 'inference worker threads up (0: inference on the main thread)' },
      reason: { type: 'string' },
    },
  },
  {
    $id: 'Error',
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
];

const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, { description: ERROR_DESCRIPTIONS[s] ?? 'error', ...json(ref('Error')) }]));
const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'bad input (see error.code)',
  401: 'no or wrong bearer token',
  404: 'no such file',
  413: 'body, image or batch too large',
  415: 'unsupported content type',
  429: 'too many requests from this client',
  503: 'not ready, or the page is not built',
};

/** The body of /api/predict and /api/activations, with that route's batch limit. */
function inputBody(batchLimit: number) {
  return {
    description:
      `one input, or {"batch": [...]} of up to ${batchLimit}; or a multipart upload of one image file; ` + 'or the raw bytes as image/png or image/jpeg',
    content: {
      'application/json': {
        schema: {
          oneOf: [
            ref('PredictInput'),
            {
              type: 'object',
              required: ['batch'],
              not: { anyOf: [{ required: ['pixels'] }, { required: ['image'] }] },
              properties: { batch: { type: 'array', minItems: 1, maxItems: batchLimit, items: ref('PredictInput') } },
            },
          ],
        },
      },
      'multipart/form-data': {
        schema: { [DOCS_ONLY]: true, type: 'object', properties: { file: { type: 'string', format: 'binary' } } },
      },
      'image/png': { schema: { [DOCS_ONLY]: true, type: 'string', format: 'binary' } },
      'image/jpeg': { schema: { [DOCS_ONLY]: true, type: 'string', format: 'binary' } },
    },
  };
}
const oneOrMany = (id: string) => ({ oneOf: [ref(id), { type: 'array', items: ref(id) }] });

/** Each route's schema, by `METHOD path`. */
export const routeSchemas = {
  'POST /api/predict': {
    summary: 'Classify a digit',
    tags: ['inference'],
    body: inputBody(LIMITS.predictBatch),
    response: { 200: { description: 'a prediction (an array for a batch)', ...json(oneOrMany('Prediction')) }, ...errors(400, 413, 415) },
  },
  'POST /api/activations': {
    summary: "Classify a digit and return every layer's output",
    tags: ['inference'],
    body: inputBody(LIMITS.activationsBatch),
    response: { 200: { description: 'activations (an array for a batch)', ...json(oneOrMany('Activations')) }, ...errors(400, 413, 415) },
  },
  'GET /api/model': {
    summary: 'Architecture, config and metrics',
    tags: ['model'],
    response: { 200: { description: 'the model', ...json(ref('ModelInfo')) } },
  },
  'GET /model/model.json': {
    summary: 'The model in the TensorFlow.js layers-model format',
    tags: ['model'],
    response: { 200: { description: 'model.json', ...json({ type: 'object' }) } },
  },
  'GET /model/weights.bin': {
    summary: 'Its weights, float32 little-endian',
    tags: ['model'],
    response: { 200: { description: 'weights.bin', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } },
  },
  'GET /api/mnist-subset': {
    summary: 'MNIST examples for training in the browser',
    tags: ['data'],
    querystring: {
      type: 'object',
      properties: {
        split: { enum: ['train', 'test'], default: 'train' },
        offset: { type: 'integer', minimum: 0, default: 0 },
        count: { type: 'integer', minimum: 1, maximum: LIMITS.subsetCount, default: 1000 },
      },
    },
    response: { 200: { description: 'pixels and labels', ...json(ref('MnistSubset')) }, ...errors(400) },
  },
  'GET /api/openapi.json': {
    summary: 'This document',
    tags: ['service'],
    response: { 200: { description: 'OpenAPI 3.1', ...json({ type: 'object' }) } },
  },
  'GET /healthz': {
    summary: 'Liveness: the process answers',
    tags: ['service'],
    response: { 200: { description: 'alive', ...json(ref('Health')) } },
  },
  'GET /readyz': {
    summary: 'Readiness: the model is loaded and the workers are up; 503 while starting or draining',
    tags: ['service'],
    response: { 200: { description: 'ready', ...json(ref('Ready')) }, 503: { description: 'not ready', ...json(ref('Ready')) } },
  },
  'GET /tfjs-wasm/:file': {
    summary: "The wasm binaries of the page's TensorFlow.js backend",
    tags: ['page'],
    params: {
      type: 'object',
      required: ['file'],
      properties: { file: { enum: WASM_FILES } },
    },
    response: { 200: { description: 'application/wasm', content: { 'application/wasm': { schema: { type: 'string', format: 'binary' } } } }, ...errors(404) },
  },
} as const;

export type RouteKey = keyof typeof routeSchemas;
