/**
 * The API's routes. Each route is declared with its schema from route-schemas.ts (Fastify validates with it
 * and /api/openapi.json is generated from it); types live in schema.ts, the computation in inference.ts.
 * A handler reads its input (the checks in checks.ts turn it into pixels), computes, and returns the answer.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import * as tf from '@tensorflow/tfjs';
import { loadMnist, type MnistSplits } from '../data/mnist.ts';
import { imageBytes, type ImageSet } from '../data/images.ts';
import { architecture } from '../model/architecture.ts';
import type { NetworkConfig } from '../model/config.ts';
import { activations, pixelsFromImage, toPixels } from './inference.ts';
import type { Predictor } from './batcher.ts';
import { ApiError, LIMITS, type Health, type MnistSubset, type ModelInfo, type Ready } from './schema.ts';
import { checkPredictRequest, checkSubsetQuery } from './checks.ts';
import { WASM_FILES, routeSchemas } from './route-schemas.ts';
import { openApiDocument } from './openapi.ts';
import type { Explainers } from './validation.ts';
import type { ServedModel } from './served-model.ts';

export interface RouteContext {
  model: ServedModel;
  backend: string;
  mnistDir?: string;
  version: string;
  /** Runs /api/predict's forward passes: batched, on the main thread or on workers. */
  predictor: Predictor;
  /** Why the server is not ready (draining, a worker gone), or undefined when it is. */
  notReady: () => string | undefined;
  /** This server's explainers (from baseExplainers), which the validator compiler reads. */
  explainers: Explainers;
}

/**
 * What a rejected request body or query is explained with (see validation.ts), one table per server:
 * registerRoutes adds the entries that depend on the served model and its data.
 */
export const baseExplainers = (): Explainers => ({
  'params GET /tfjs-wasm/:file': (params) => {
    const file = (params as { file?: string }).file;
    throw new ApiError('NOT_FOUND', `no file /tfjs-wasm/${file}; the wasm backend needs one of ${WASM_FILES.join(', ')}`);
  },
});

export async function registerRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { model, explainers } = ctx;
  const started = performance.now();
  // pixels are counted against the served model's input (784 for a digit model, 3,072 for a 32x32x3 one)
  explainers['body POST /api/predict'] = (body) => void checkPredictRequest(body, LIMITS.predictBatch, model.net.input);
  explainers['body POST /api/activations'] = (body) => void checkPredictRequest(body, LIMITS.activationsBatch, model.net.input);

  // --- inference
  app.post('/api/predict', { schema: routeSchemas['POST /api/predict'] }, async (request) => {
    const { batch, images, ms } = await readInputs(request, LIMITS.predictBatch, model.net);
    const answers = await ctx.predictor.predict(images, ms);
    return batch ? answers : answers[0];
  });

  app.post('/api/activations', { schema: routeSchemas['POST /api/activations'] }, async (request) => {
    const { batch, images, ms } = await readInputs(request, LIMITS.activationsBatch, model.net);
    const answers = activations(model.net, model.params, images, ms);
    return batch ? answers : answers[0];
  });

  // --- the model
  const info: ModelInfo = {
    architecture: architecture(model.net),
    network: model.net,
    parameters: architecture(model.net).reduce((n, l) => n + l.parameters, 0),
    train: isRecord(model.metadata.train) ? model.metadata.train : null,
    metrics: model.metrics,
    files: { modelJson: '/model/model.json', weights: '/model/weights.bin', onnx: '/api/model.onnx' },
    backend: ctx.backend,
    limits: LIMITS,
  };
  app.get('/api/model', { schema: routeSchemas['GET /api/model'] }, async () => info);

  app.get('/model/model.json', { schema: routeSchemas['GET /model/model.json'] }, async (_request, reply) => {
    void reply.type('application/json').header('cache-control', 'no-cache');
    return model.modelJson;
  });
  app.get('/model/weights.bin', { schema: routeSchemas['GET /model/weights.bin'] }, async (_request, reply) => {
    void reply.type('application/octet-stream').header('cache-control', 'no-cache');
    return model.weights;
  });

  // --- MNIST for training in the browser: uint8 pixels and labels, base64
  let mnist: Promise<MnistSplits> | undefined;
  const splits = () => {
    mnist ??= loadMnist(ctx.mnistDir);
    return mnist.catch((err) => {
      mnist = undefined; // let a later request retry
      throw err;
    });
  };
  const subsetSizes = async () => {
    const s = await splits();
    return (split: 'train' | 'test') => (split === 'train' ? s.train : s.test).count;
  };
  explainers['querystring GET /api/mnist-subset'] = async (query) => void checkSubsetQuery(query, await subsetSizes());
  app.get('/api/mnist-subset', { schema: routeSchemas['GET /api/mnist-subset'] }, async (request): Promise<MnistSubset> => {
    const loaded = await splits();
    const pick = (split: 'train' | 'test'): ImageSet => (split === 'train' ? loaded.train : loaded.test);
    const { split, offset, count } = checkSubsetQuery(request.query, (s) => pick(s).count);
    const data = pick(split);
    const pixels = imageBytes(data, offset, count); // exact: MNIST is uint8/255
    const bytes = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.length);
    const labels = Buffer.from(data.labels.buffer, data.labels.byteOffset + offset, count);
    return { split, offset, count, height: data.height, width: data.width, pixels: bytes.toString('base64'), labels: labels.toString('base64') };
  });

  // --- about the service
  let openapi: Record<string, unknown> | undefined;
  app.get('/api/openapi.json', { schema: routeSchemas['GET /api/openapi.json'] }, async () => (openapi ??= openApiDocument(app)));

  app.get(
    '/healthz',
    { schema: routeSchemas['GET /healthz'] },
    async (): Promise<Health> => ({
      status: 'ok',
      uptimeSeconds: Math.round((performance.now() - started) / 100) / 10,
      backend: ctx.backend,
      tensors: tf.memory().numTensors,
      predict: { passes: ctx.predictor.passes, images: ctx.predictor.images },
    }),
  );

  app.get('/readyz', { schema: routeSchemas['GET /readyz'] }, async (_request, reply): Promise<Ready> => {
    const reason = ctx.notReady();
    if (reason !== undefined) void reply.code(503);
    return { ready: reason === undefined, workers: ctx.predictor.workers, ...(reason === undefined ? {} : { reason }) };
  });

  // --- the wasm binaries for the page, from the installed package (nothing from a CDN)
  const wasmDir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
  const wasmCache = new Map<string, Buffer>();
  app.get<{ Params: { file: string } }>('/tfjs-wasm/:file', { schema: routeSchemas['GET /tfjs-wasm/:file'] }, async (request, reply) => {
    const file = request.params.file; // one of WASM_FILES: the params schema says so
    let bytes = wasmCache.get(file);
    if (bytes === undefined) {
      bytes = await readFile(join(wasmDir, file));
      wasmCache.set(file, bytes);
    }
    void reply.type('application/wasm').header('cache-control', 'public, max-age=3600');
    return bytes;
  });
}

/** The request's inputs as the network's input (784 pixels for a digit model), from JSON, a multipart upload or raw image bytes. */
async function readInputs(request: FastifyRequest, batchLimit: number, net: NetworkConfig): Promise<{ batch: boolean; images: Float32Array[]; ms: number[] }> {
  const t0 = performance.now();
  if (request.isMultipart()) {
    let image: Float32Array | undefined;
    try {
      for await (const part of request.files()) {
        if (image !== undefined) {
          throw new ApiError('MULTIPART_TOO_MANY_FILES', 'upload one image file per request; for several, send {"batch": [...]} as JSON');
        }
        image = await pixelsFromImage(await part.toBuffer(), part.filename || part.fieldname, net);
      }
    } catch (err) {
      // the parser's own errors (no boundary, cut-off body) carry no HTTP status: they are the client's
      if (err instanceof ApiError || typeof (err as { statusCode?: unknown })?.statusCode === 'number') throw err;
      throw new ApiError(
        'BAD_REQUEST',
        `malformed multipart body (${(err as Error)?.message ?? err}); upload the image as a file field (curl -F file=@digit.png)`,
        { cause: err },
      );
    }
    if (image === undefined) {
      throw new ApiError('MULTIPART_NO_FILE', 'the multipart body has no file; upload the image as a file field (curl -F file=@digit.png)');
    }
    return { batch: false, images: [image], ms: [performance.now() - t0] };
  }
  if (Buffer.isBuffer(request.body)) {
    const image = await pixelsFromImage(request.body, 'the request body', net);
    return { batch: false, images: [image], ms: [performance.now() - t0] };
  }
  const checked = checkPredictRequest(request.body, batchLimit, net.input);
  const images: Float32Array[] = [];
  const ms: number[] = [];
  for (const [i, input] of checked.inputs.entries()) {
    const t = performance.now();
    images.push('pixels' in input ? input.pixels : await toPixels(input, checked.batch ? `batch[${i}].image` : 'image', net));
    ms.push(performance.now() - (i === 0 ? t0 : t));
  }
  return { batch: checked.batch, images, ms };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
