/**
 * Dropout masks: each value is kept with probability 1 − rate and then scaled by exactly 1/(1 − rate), so
 * the expected activation is unchanged (inverted dropout, as Keras' Dropout layer). The keep rate is checked
 * against the binomial distribution of the number of zeros; the forward pass must multiply the layer's
 * output by the mask and nothing else.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { layerShapes, presets, type NetworkConfig } from '../../src/model/config.ts';
import { disposeParams, forward, initParams, type Activations } from '../../src/model/cnn.ts';
import { drawDropoutMasks, hasDropout, maskTensors, sliceMasks } from '../../src/train/dropout.ts';

const seedNet = presets.seed.network;
/** Dropout 0.25 after conv block 2 and 0.6 after fc1; none elsewhere. */
const net: NetworkConfig = {
  ...seedNet,
  conv: [seedNet.conv[0], { ...seedNet.conv[1], dropout: 0.25 }],
  dense: [{ ...seedNet.dense[0], dropout: 0.6 }, seedNet.dense[1]],
};

before(async () => {
  await useBackend('cpu');
});

test('a layer at rate p keeps a 1 − p share of its values, each scaled by exactly 1/(1 − p); layers at 0 get no mask', () => {
  assert.equal(hasDropout(seedNet), false);
  assert.equal(hasDropout(net), true);
  const count = 64;
  const masks = drawDropoutMasks(net, count, new Rng(3));
  assert.equal(masks.conv[0], undefined);
  assert.equal(masks.dense[1], undefined);
  const shapes = layerShapes(net);
  for (const [mask, rate, size] of [
    [masks.conv[1]!, 0.25, shapes.conv[1].reduce((a, b) => a * b, 1)],
    [masks.dense[0]!, 0.6, shapes.dense[0][0]],
  ] as const) {
    assert.equal(mask.length, count * size);
    const keep = Math.fround(1 / (1 - rate));
    let zeros = 0;
    let sum = 0;
    for (const v of mask) {
      if (v === 0) zeros++;
      else assert.equal(v, keep, `a kept value is ${v}, not 1/(1 − ${rate})`);
      sum += v;
    }
    // The number of zeros is Binomial(n, rate): within 5 standard deviations of n·rate.
    const n = mask.length;
    const sd = Math.sqrt(n * rate * (1 - rate));
    assert.ok(Math.abs(zeros - n * rate) < 5 * sd, `rate ${rate}: ${zeros} of ${n} dropped, expected ${n * rate} ± ${(5 * sd).toFixed(0)}`);
    // So the mean of the mask, the expected scale of an activation, is 1.
    assert.ok(Math.abs(sum / n - 1) < (5 * sd * keep) / n, `rate ${rate}: mean mask ${sum / n}`);
  }
});

test('masks are a function of the generator: same seed same masks, another seed others; a slice is the rows of the whole', () => {
  const a = drawDropoutMasks(net, 10, new Rng(7));
  assert.deepEqual(drawDropoutMasks(net, 10, new Rng(7)), a);
  assert.notDeepEqual(drawDropoutMasks(net, 10, new Rng(8)).dense[0], a.dense[0]);
  const size = layerShapes(net).dense[0][0];
  const part = sliceMasks(net, a, 3, 7);
  assert.deepEqual(part.dense[0], a.dense[0]!.slice(3 * size, 7 * size));
  assert.equal(part.conv[0], undefined);
});

test('the training pass multiplies each layer output by its mask; inference applies none', () => {
  const params = initParams(net, new Rng(5));
  const count = 4;
  const x = tf.tidy(() => tf.randomUniform([count, 28, 28, 1], 0, 1, 'float32', 9) as tf.Tensor4D);
  const masks = drawDropoutMasks(net, count, new Rng(11));
  const t = maskTensors(net, masks, count);
  const plain: Activations = { conv: [], dense: [] };
  const dropped: Activations = { conv: [], dense: [] };
  tf.tidy(() => {
    forward(net, params, x, plain);
    forward(net, params, x, dropped, t);
    const close = (a: tf.Tensor, b: tf.Tensor, what: string) => {
      const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
      assert.ok(d < 1e-5, `${what}: differs by ${d}`);
    };
    close(dropped.conv[0], plain.conv[0], 'conv block 1 (no dropout)');
    close(dropped.conv[1], tf.mul(plain.conv[1], t.conv[1]!), 'conv block 2 = plain × mask');
    // fc1 sees conv 2's dropped output, so compare it with its own input recomputed rather than `plain`.
    const z = tf.relu(tf.add(tf.matMul(tf.reshape(dropped.conv[1], [count, -1]), params.get('fc1/kernel')!), params.get('fc1/bias')!));
    close(dropped.dense[0], tf.mul(z, t.dense[0]!), 'fc1 = relu(…) × mask');
    // Dropped values are exactly zero and kept ones are scaled up.
    const fc1 = dropped.dense[0].dataSync();
    const m = masks.dense[0]!;
    for (let k = 0; k < m.length; k++) if (m[k] === 0) assert.equal(fc1[k], 0);
  });
  tf.dispose([x, ...t.conv.filter((m) => m !== undefined), ...t.dense.filter((m) => m !== undefined)]);
  disposeParams(params);
});
