import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { Adam } from '../../src/train/adam.ts';
import { scheduledRate } from '../../src/train/optimizer.ts';
import { adamReference, gradients, start } from '../helpers/optimizer-reference.ts';

for (const backend of ['cpu', 'wasm'] as const) {
  test(`${backend}: Adam's first step moves each weight by the learning rate against the gradient's sign`, async () => {
    await useBackend(backend);
    const theta = tf.variable(tf.tensor1d([1, -2, 0.5, 3]));
    const adam = new Adam({ beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    const g = tf.tensor1d([0.1, -0.3, 0, 1e-3]);
    adam.apply(new Map([['w', theta]]), new Map([['w', g]]), 0.01);
    // m̂ = g and v̂ = g² after one step, so the update is lr·g/|g| (0 where g = 0): the paper's "trust region".
    const got = Array.from(theta.dataSync());
    const want = [0.99, -1.99, 0.5, 2.99];
    got.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-6, `weight ${i}: ${x} vs ${want[i]}`));
    adam.dispose();
    tf.dispose([theta, g]);
  });

  test(`${backend}: Adam matches Algorithm 1 over several steps`, async () => {
    await useBackend(backend);
    const theta = tf.variable(tf.tensor1d(start));
    const adam = new Adam({ beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    for (const g of gradients) {
      const gt = tf.tensor1d(g);
      adam.apply(new Map([['w', theta]]), new Map([['w', gt]]), 0.05);
      gt.dispose();
    }
    const want = adamReference(start, gradients, 0.05);
    Array.from(theta.dataSync()).forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5, `weight ${i}: ${x} vs ${want[i]}`));
    assert.equal(adam.step, 4);
    adam.dispose();
    theta.dispose();
  });
}

test('cosine schedule starts and ends at the given rates and is monotone', () => {
  const total = 101;
  const cosine = { type: 'cosine', finalLearningRate: 1e-5 } as const;
  const learningRateAt = (schedule: 'constant' | 'cosine', start: number, i: number) =>
    scheduledRate(schedule === 'cosine' ? cosine : { type: 'constant' }, start, i, total);
  assert.equal(learningRateAt('cosine', 1e-3, 0), 1e-3);
  assert.ok(Math.abs(learningRateAt('cosine', 1e-3, total - 1) - 1e-5) < 1e-12);
  assert.ok(Math.abs(learningRateAt('cosine', 1e-3, 50) - (1e-3 + 1e-5) / 2) < 1e-12);
  for (let i = 1; i < total; i++) assert.ok(learningRateAt('cosine', 1e-3, i) <= learningRateAt('cosine', 1e-3, i - 1));
  assert.equal(learningRateAt('constant', 1e-4, 77), 1e-4);
});
