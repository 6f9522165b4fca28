/**
 * The HTTP API's contract: limits, request and response types, error codes. Each route's JSON Schema is in
 * route-schemas.ts, the request checks in checks.ts. Shared by the server (src/serve/) and the page (web/),
 * so it imports no Node module and no TensorFlow.js: only types from the model and the error base class.
 *
 *   POST /api/predict       {"pixels": [784]} | {"image": "<base64>"} | {"batch": [...]} | multipart | image/*
 *                           → Prediction | Prediction[]
 *   POST /api/activations   the same inputs → Activations | Activations[]
 *   GET  /api/model         → ModelInfo
 *   GET  /api/model.onnx    ?layout=nchw|nhwc → the model as an ONNX file (onnx-route.ts)
 *   GET  /api/mnist-subset  ?split=train&offset=0&count=1000 → MnistSubset
 *   GET  /api/openapi.json  → the OpenAPI 3.1 document
 *   GET  /healthz           → Health (alive)
 *   GET  /readyz            → Ready (model loaded, workers up; 503 while starting or draining)
 *   GET  /model/model.json, /model/weights.bin   the served model, for tf.loadLayersModel or the page
 */
import { ConvlabError } from '../errors.ts';
import type { NetworkConfig } from '../model/config.ts';
import type { LayerInfo, LayerKind } from '../model/architecture.ts';

export type { LayerInfo, LayerKind } from '../model/architecture.ts';

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
  /** Server time for this input: decoding + preprocessing + waiting for its batch + forward pass (a pass is shared equally). */
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
  /** /api/predict's forward passes and the images in them so far (images / passes: the mean batch). */
  predict: { passes: number; images: number };
}

export interface Ready {
  ready: boolean;
  /** Inference worker threads up (0: inference runs on the main thread). */
  workers: number;
  /** Why not ready. */
  reason?: string;
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
  /** The server was started with --token-file and the request has no `Authorization: Bearer` with that token. */
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  /** The client sent its request too slowly (see the server's timeouts). */
  REQUEST_TIMEOUT: 408,
  /** Over --rate-limit for this client: wait for the retry-after header's seconds. */
  RATE_LIMITED: 429,
  /** Starting, or draining before shutdown: a load balancer should try another instance. */
  NOT_READY: 503,
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
