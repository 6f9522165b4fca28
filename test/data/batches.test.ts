import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchSampler, Rng } from '../../src/data/batches.ts';
import type { LabeledImages } from '../../src/data/idx.ts';
import { imageFloats, toFloats, type LabeledBytes } from '../../src/data/images.ts';

const draw = (rng: Rng, n: number): number[] => Array.from({ length: n }, () => rng.uint32());

function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length;
  return { mean, std: Math.sqrt(variance) };
}

// --- Rng --------------------------------------------------------------------------------------------

test('Rng: known answer for seed 42 (splitmix32-seeded sfc32, checked against a Python reference)', () => {
  assert.deepEqual(draw(new Rng(42), 4), [1959603763, 2423114712, 2466933512, 4144396390]);
});

test('Rng: same seed gives the same sequence, a different seed a different one', () => {
  assert.deepEqual(draw(new Rng(7), 100), draw(new Rng(7), 100));
  assert.notDeepEqual(draw(new Rng(7), 100), draw(new Rng(8), 100));
});

test('Rng: state() / fromState() continues the exact sequence', () => {
  const a = new Rng(123);
  draw(a, 17);
  const b = Rng.fromState(JSON.parse(JSON.stringify(a.state())));
  assert.deepEqual(draw(b, 50), draw(a, 50));
  assert.throws(() => Rng.fromState([1, 2, 3]), /four uint32/);
});

test('Rng: next() in [0,1) with mean ~1/2; int(n) in range and roughly uniform', () => {
  const rng = new Rng(1);
  const xs = Array.from({ length: 20000 }, () => rng.next());
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.ok(Math.abs(meanStd(xs).mean - 0.5) < 0.01);

  const counts = new Array(7).fill(0);
  for (let i = 0; i < 70000; i++) counts[rng.int(7)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 500, `bucket count ${c} far from 10,000`);
  assert.throws(() => rng.int(0), RangeError);
});

test('Rng: normal() has mean ~0 and std ~1', () => {
  const rng = new Rng(2);
  const { mean, std } = meanStd(Array.from({ length: 20000 }, () => rng.normal()));
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.03, `std ${std}`);
});

test('Rng: truncatedNormal stays within 2 stddev, with the std of a normal truncated at ±2σ', () => {
  const rng = new Rng(3);
  const stddev = 0.05;
  const xs = Array.from({ length: 20000 }, () => rng.truncatedNormal(stddev));
  assert.ok(xs.every((x) => Math.abs(x) <= 2 * stddev));
  const { mean, std } = meanStd(xs);
  // std of N(0,1) truncated to [-2,2] = sqrt(1 - 4φ(2)/(Φ(2)-Φ(-2))) ≈ 0.8796
  assert.ok(Math.abs(mean) < 0.002, `mean ${mean}`);
  assert.ok(Math.abs(std / stddev - 0.8796) < 0.02, `std ${std / stddev} σ`);
  // and it does reach past 1.9σ, so the tails are not clipped more than asked
  assert.ok(xs.some((x) => Math.abs(x) > 1.9 * stddev));
});

// --- BatchSampler -----------------------------------------------------------------------------------

/** `count` 2x1x1 images whose pixels encode their index, with label = index % 10. */
function fakeData(count: number): LabeledImages {
  const images = new Float32Array(count * 2);
  for (let i = 0; i < count; i++) {
    images[2 * i] = i;
    images[2 * i + 1] = -i;
  }
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  return { images, labels, count, height: 2, width: 1, channels: 1 };
}

test('BatchSampler: every index exactly once per epoch, also when batches wrap across epochs', () => {
  for (const [count, batchSize] of [
    [12, 4],
    [10, 3],
    [5, 7],
  ]) {
    const sampler = new BatchSampler(fakeData(count), batchSize, new Rng(9));
    const stream: number[] = [];
    const epochs = 4;
    while (stream.length < epochs * count) stream.push(...sampler.next().indices);
    for (let e = 0; e < epochs; e++) {
      const epoch = stream.slice(e * count, (e + 1) * count);
      assert.deepEqual(
        [...epoch].sort((a, b) => a - b),
        Array.from({ length: count }, (_, i) => i),
        `count ${count}, batch ${batchSize}, epoch ${e}`,
      );
    }
    const drawn = Math.ceil((epochs * count) / batchSize) * batchSize;
    assert.equal(sampler.epoch, Math.floor(drawn / count));
    assert.equal(sampler.position, drawn % count);
  }
});

test('BatchSampler: reshuffles each epoch', () => {
  const sampler = new BatchSampler(fakeData(50), 50, new Rng(4));
  const first = Array.from(sampler.next().indices);
  const second = Array.from(sampler.next().indices);
  assert.notDeepEqual(first, second);
  assert.notDeepEqual(
    first,
    Array.from({ length: 50 }, (_, i) => i),
    'the first epoch is shuffled too',
  );
  assert.equal(sampler.epoch, 2);
});

test('BatchSampler: batches carry the rows and labels of their indices', () => {
  const sampler = new BatchSampler(fakeData(20), 6, new Rng(5));
  for (let step = 0; step < 5; step++) {
    const { images, labels, indices } = sampler.next();
    assert.equal(images.length, 6 * 2);
    indices.forEach((k, i) => {
      assert.deepEqual([images[2 * i], images[2 * i + 1]], [k, -k]);
      assert.equal(labels[i], k % 10);
    });
  }
});

test('BatchSampler: deterministic for the same seed, different for another', () => {
  const run = (seed: number) => {
    const sampler = new BatchSampler(fakeData(30), 8, new Rng(seed));
    return Array.from({ length: 10 }, () => Array.from(sampler.next().indices));
  };
  assert.deepEqual(run(11), run(11));
  assert.notDeepEqual(run(11), run(12));
});

test('BatchSampler: rejects a bad batch size or an empty data set', () => {
  assert.throws(() => new BatchSampler(fakeData(4), 0, new Rng(0)), /batch size/);
  assert.throws(() => new BatchSampler(fakeData(0), 2, new Rng(0)), /empty/);
});

// --- images kept as bytes, and drawing one batch ahead -----------------------------------------------

/** `count` 3x2x2 images of bytes (image k, value j: (31·k + 7·j) mod 256). */
function byteSet(count: number): LabeledBytes {
  const bytes = Uint8Array.from({ length: count * 12 }, (_, i) => (31 * Math.floor(i / 12) + 7 * (i % 12)) % 256);
  return { bytes, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), count, height: 3, width: 2, channels: 2 };
}

test('BatchSampler: a byte set gives bit for bit the batches of the same set as floats (byte/255)', () => {
  const bytes = byteSet(23);
  const floats = toFloats(bytes);
  assert.equal(floats.images[12 * 5 + 3], Math.fround(bytes.bytes[12 * 5 + 3] / 255));
  const a = new BatchSampler(bytes, 5, new Rng(3));
  const b = new BatchSampler(floats, 5, new Rng(3));
  for (let k = 0; k < 12; k++) {
    const [x, y] = [a.next(), b.next()];
    assert.deepEqual(x.images, y.images, `batch ${k}`);
    assert.deepEqual(x.labels, y.labels);
    for (let i = 0; i < 5; i++) assert.deepEqual(x.images.subarray(12 * i, 12 * (i + 1)), imageFloats(bytes, x.indices[i], 1));
  }
});

test('BatchSampler: stateBeforeLast() resumes at the last batch drawn, inside an epoch and across its end', () => {
  const data = byteSet(23); // batches of 5: the 5th batch of each epoch wraps into the next permutation
  const sampler = new BatchSampler(data, 5, new Rng(9));
  for (let k = 0; k < 14; k++) {
    const batch = sampler.next();
    const saved = JSON.parse(JSON.stringify(sampler.stateBeforeLast()));
    const resumed = BatchSampler.fromState(data, 5, saved);
    assert.deepEqual(resumed.next().indices, batch.indices, `batch ${k}`);
    // and both go on alike
    assert.deepEqual(resumed.next().indices, BatchSampler.fromState(data, 5, sampler.state()).next().indices);
  }
});
