/**
 * Batched classification: how many images a forward pass takes, that the batch size never changes an
 * answer, and that the wasm heap (which never shrinks) stays small however many images are classified.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/rng.ts';
import { loadMnist, subset } from '../../src/data/mnist.ts';
import { imageFloats } from '../../src/data/images.ts';
import { presets } from '../../src/model/config.ts';
import { parseRunConfig, resolveRunConfig } from '../../src/model/validate.ts';
import { disposeParams, initParams } from '../../src/model/cnn.ts';
import { CLASSIFY_BATCH, classify, classifyBatch, evaluate } from '../../src/eval/classify.ts';

before(async () => {
  await useBackend('wasm');
});

const cifarLesson = resolveRunConfig(
  parseRunConfig(
    {
      network: {
        conv: [
          { filters: 64, size: 5 },
          { filters: 64, size: 5 },
        ],
        dense: [{ units: 256 }, { units: 128 }, { activation: 'linear' }],
      },
    },
    'x',
  ),
  { height: 32, width: 32, channels: 3, classes: 10, name: 'cifar' },
  'x',
).network;

test('classifyBatch keeps the largest activation near 8 MiB: 167 seed-network images, 32 CIFAR lesson ones, at most 500', () => {
  assert.equal(classifyBatch(presets.seed.network), 167); // conv1: 28·28·16 floats per image
  assert.equal(classifyBatch(cifarLesson), 32); // conv1: 32·32·64 floats per image
  const tiny = { ...presets.seed.network, conv: [], dense: [{ units: 10, activation: 'linear' as const, dropout: 0 }] };
  assert.equal(classifyBatch(tiny), CLASSIFY_BATCH);
});

test('the batch size never changes a prediction; 2,000 images leave the wasm heap under 64 MB', async () => {
  const net = presets.seed.network;
  const params = initParams(net, new Rng(5));
  const test = (await loadMnist()).test;
  const images = imageFloats(test, 0, 2000);
  const wasm = tf.backend() as BackendWasm;
  const heapBytes = () => (wasm.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.byteLength;
  const batched = classify(net, params, images, 2000); // the default batch, first: the heap only grows
  assert.ok(heapBytes() < 64 * 2 ** 20, `wasm heap ${(heapBytes() / 2 ** 20).toFixed(0)} MB after classifying 2,000 images`);
  assert.deepEqual(classify(net, params, images, 2000, 7), batched);
  const first = subset(test, 0, 2000);
  assert.equal(evaluate(net, params, first).correct, evaluate(net, params, first, 7).correct);
  disposeParams(params);
});
