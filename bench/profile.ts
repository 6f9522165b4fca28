/**
 * Where one worker's share of a training step goes: `npx tsx bench/profile.ts [IMAGES] [ROUNDS]`.
 * Runs the gradient function (the one every worker runs, train/step.ts) on IMAGES (default 32, one worker's
 * half of a batch of 64) real MNIST images of the seed network in this thread, under `tf.profile`, ROUNDS
 * times (default 30) after a warm-up, and prints each kernel's least time per step over the rounds (the
 * least, because on a shared machine the other processes only ever add), the sum, and the main thread's
 * own work per batch (drawing and augmenting it) beside it.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.ts';
import { augmentBatch } from '../src/data/augment.ts';
import { BatchSampler } from '../src/data/batches.ts';
import { loadMnist } from '../src/data/mnist.ts';
import { Rng } from '../src/data/rng.ts';
import { initParams } from '../src/model/cnn.ts';
import { presets } from '../src/model/config.ts';
import { computeGradients } from '../src/train/step.ts';

const images = Number(process.argv[2] ?? 32);
const rounds = Number(process.argv[3] ?? 30);
await useBackend('wasm');
const net = presets.default.network;
const params = initParams(net, new Rng(1));
const mnist = await loadMnist();
const sampler = new BatchSampler(mnist.train, images, new Rng(2));

/** One step's gradients, read out as a worker does (the reads end the step). */
function step(x: Float32Array, labels: Uint8Array): void {
  tf.tidy(() => {
    const g = computeGradients(net, params, tf.tensor4d(x, [images, 28, 28, 1]), tf.tensor1d(labels, 'int32'));
    for (const t of g.grads.values()) t.dataSync();
    g.loss.dataSync();
    g.correct.dispose();
  });
}

const best = new Map<string, number>();
let bestTotal = Infinity;
let bestWall = Infinity;
for (let r = 0; r < rounds + 3; r++) {
  const batch = sampler.next();
  const t0 = performance.now();
  const info = await tf.profile(() => step(batch.images, batch.labels));
  const wall = performance.now() - t0;
  if (r < 3) continue; // warm-up: kernels compiled, operators cached
  const perKernel = new Map<string, number>();
  for (const k of info.kernels) perKernel.set(k.name, (perKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
  for (const [name, ms] of perKernel) best.set(name, Math.min(best.get(name) ?? Infinity, ms));
  bestTotal = Math.min(
    bestTotal,
    [...perKernel.values()].reduce((a, b) => a + b, 0),
  );
  bestWall = Math.min(bestWall, wall);
}

// The main thread's work per batch of 2·IMAGES: draw it, augment it with the default recipe.
const full = new BatchSampler(mnist.train, 2 * images, new Rng(3));
let drawMs = Infinity;
let augmentMs = Infinity;
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  const b = full.next();
  const t1 = performance.now();
  augmentBatch(b.images, 2 * images, mnist.train, presets.default.train.augment, Rng.derive(1, r, 1));
  const t2 = performance.now();
  drawMs = Math.min(drawMs, t1 - t0);
  augmentMs = Math.min(augmentMs, t2 - t1);
}

const rows = [...best].sort((a, b) => b[1] - a[1]);
console.log(`one worker's gradients of ${images} images (seed network, ${process.version}), least of ${rounds} rounds, ms:`);
for (const [name, ms] of rows) console.log(`  ${name.padEnd(28)} ${ms.toFixed(2).padStart(7)}`);
console.log(`  ${'sum of kernels (least)'.padEnd(28)} ${bestTotal.toFixed(2).padStart(7)}`);
console.log(`  ${'wall of the step (least)'.padEnd(28)} ${bestWall.toFixed(2).padStart(7)}`);
console.log(`main thread per batch of ${2 * images}: draw ${drawMs.toFixed(2)} ms, augment (default recipe) ${augmentMs.toFixed(2)} ms`);
