/**
 * The serving channel (train/serving.ts): both ends in this thread for its protocol, then a real worker
 * for the answers and for a worker that goes away in the middle of a pass.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/rng.ts';
import { presets } from '../../src/model/config.ts';
import { disposeParams, initParams } from '../../src/model/cnn.ts';
import { probabilities } from '../../src/eval/classify.ts';
import { flattenParams } from '../../src/train/loop.ts';
import { GradientPool } from '../../src/train/parallel.ts';
import { ServingChannel, serveChannel, servingBuffers } from '../../src/train/serving.ts';

before(async () => {
  await useBackend('wasm');
});

const image = (seed: number, pixels = 4) => Float32Array.from({ length: pixels }, (_, i) => (seed * 7 + i) % 5);

test('a channel answers each pass with what the worker computed for exactly those images', async () => {
  const channel = new ServingChannel(servingBuffers(8, 4, 2));
  // the "worker": per image, the sum and the first value of its pixels
  serveChannel(channel.buffers, (images, count) => {
    const out = new Float32Array(count * 2);
    for (let i = 0; i < count; i++) {
      const im = images.subarray(i * 4, (i + 1) * 4);
      out[2 * i] = im.reduce((a, b) => a + b, 0);
      out[2 * i + 1] = im[0];
    }
    return out;
  });
  for (const count of [1, 8, 3]) {
    const images = Array.from({ length: count }, (_, i) => image(count + i));
    const expected = images.flatMap((im) => [im.reduce((a, b) => a + b, 0), im[0]]);
    assert.deepEqual(Array.from(await channel.run(images, count)), expected, `a pass of ${count}`);
  }
  channel.gone(); // ends the loop
});

test("a worker's error fails that pass with its message; the next pass works", async () => {
  const channel = new ServingChannel(servingBuffers(2, 4, 1));
  let calls = 0;
  serveChannel(channel.buffers, (_images, count) => {
    if (++calls === 1) throw new Error('out of memory (wasm heap)');
    return new Float32Array(count).fill(1);
  });
  await assert.rejects(channel.run([image(0)], 1), { message: 'inference worker failed: out of memory (wasm heap)' });
  assert.deepEqual(Array.from(await channel.run([image(1), image(2)], 2)), [1, 1]);
  await assert.rejects(channel.run([image(0), image(1), image(2)], 3), RangeError); // over the channel's room
  channel.gone();
});

test('a pass waiting for a worker that is gone fails instead of hanging, and so does every later one', async () => {
  const channel = new ServingChannel(servingBuffers(2, 4, 1)); // nobody serves it
  const pending = channel.run([image(0)], 1);
  channel.gone();
  await assert.rejects(pending, { message: 'the inference worker is gone' });
  await assert.rejects(channel.run([image(0)], 1), { message: 'the inference worker is gone' });
});

test("on a real worker: the same probabilities as this thread's forward pass; closing the pool mid-pass does not hang", async () => {
  const net = presets.seed.network;
  const params = initParams(net, new Rng(3));
  const pool = await GradientPool.start(net, 1, 'wasm');
  try {
    pool.publish(flattenParams(net, params));
    const channel = await pool.serve(16);
    const rng = new Rng(9);
    const images = Array.from({ length: 5 }, () => Float32Array.from({ length: 784 }, () => rng.next()));
    const flat = new Float32Array(5 * 784);
    for (const [i, im] of images.entries()) flat.set(im, i * 784);
    const here = probabilities(net, params, flat, 5);
    const there = await channel.run(images, 5);
    assert.equal(there.length, 5 * 10);
    for (const [i, v] of there.entries()) assert.ok(Math.abs(v - here[i]) < 1e-6, `[${i}] ${v} vs ${here[i]}`);
    // messages still reach the serving worker, and what it holds stays flat over passes of every size
    for (const n of [16, 1, 7]) await channel.run(images.concat(images, images, images).slice(0, n), n);
    const [warm] = await pool.memory();
    assert.ok(warm.tensors > 0 && warm.heapBytes > 0, JSON.stringify(warm));
    for (let k = 0; k < 30; k++) {
      const n = 1 + ((k * 7) % 16);
      await channel.run(images.concat(images, images, images).slice(0, n), n);
    }
    assert.deepEqual((await pool.memory())[0], warm, 'tensors, data ids and wasm heap after 30 passes');

    const inFlight = channel.run(images, 5).then(
      () => 'answered',
      () => 'failed',
    );
    await pool.close();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([inFlight, new Promise((r) => (timer = setTimeout(() => r('hung'), 10_000)))]);
    clearTimeout(timer);
    assert.notEqual(outcome, 'hung');
    await assert.rejects(channel.run(images.slice(0, 1), 1), { message: 'the inference worker is gone' });
  } finally {
    await pool.close();
    disposeParams(params);
  }
});
