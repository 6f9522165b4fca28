/**
 * `npm run bench`: throughput of the seed network, measured in one run against peers on the same machine.
 *
 *   training images/s   batch 64, Adam, steady state (after warm-up), real MNIST batches
 *   inference images/s  batch 256 over the test set
 *   peers               PyTorch (Debian python3-torch, when importable) and stock TensorFlow.js on wasm
 *   time to accuracy    wall seconds for `convlab train` (default preset) to reach ≥ 99.0% test accuracy
 *
 * Prints a table with each ratio to the PyTorch peer and writes bench/results.json.
 * Flags: --quick (shorter runs, no time-to-accuracy), --no-peers, --no-tta, --seconds S (per measurement).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.ts';
import { BatchSampler } from '../src/data/batches.ts';
import { Rng } from '../src/data/rng.ts';
import { loadMnist, mnistDir, subset } from '../src/data/mnist.ts';
import { presets } from '../src/model/config.ts';
import { disposeParams, initParams } from '../src/model/cnn.ts';
import { train } from '../src/train/loop.ts';
import { withEngine } from '../src/train/engine.ts';
import { defaultWorkerCount } from '../src/train/parallel.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const secondsFlag = process.argv.indexOf('--seconds');
const seconds = secondsFlag > 0 ? Number(process.argv[secondsFlag + 1]) : quick ? 5 : 20;
const peerDir = process.env.CONVLAB_PEER_DIR ?? resolve(root, '..', 'shared', 'bench');

interface Row {
  system: string;
  trainImagesPerSecond?: number;
  inferImagesPerSecond?: number;
  note?: string;
  /** For the peer, measured before and after convlab: each run's figures (the row has their mean). */
  runs?: { trainImagesPerSecond?: number; inferImagesPerSecond?: number }[];
}

const net = presets.seed.network;
const rows: Row[] = [];
const log = (s: string) => process.stderr.write(`${s}\n`);

await useBackend('wasm');
const mnist = await loadMnist();

/** Steady-state training throughput: warm up, then as many steps as fit in `seconds`. */
async function trainThroughput(workers: number): Promise<number> {
  const run = { network: net, train: { ...presets.seed.train, logEvery: 1e9, validateEvery: 0 } };
  const params = initParams(net, new Rng(1));
  try {
    return await withEngine(net, { workers, backend: 'wasm' }, async (engine) => {
      const measure = async (iterations: number) => {
        // A 64-image validation set keeps the end-of-run validation pass negligible.
        const data = { train: mnist.train, validation: subset(mnist.validation, 0, 64) };
        const r = await train({ ...run, train: { ...run.train, iterations } }, params, data, {}, { engine });
        return { images: iterations * 64, trainSeconds: r.trainSeconds };
      };
      const warm = await measure(10);
      const perStep = warm.trainSeconds / 10;
      const iterations = Math.max(20, Math.round(seconds / perStep));
      const m = await measure(iterations);
      return m.images / m.trainSeconds;
    });
  } finally {
    disposeParams(params);
  }
}

/**
 * Inference throughput: batches of 256 test images, classified in this thread (workers = 0) or split
 * across worker threads, repeated for half the measurement time.
 */
async function inferThroughput(workers: number): Promise<number> {
  const params = initParams(net, new Rng(1));
  const batch = 256;
  const sampler = new BatchSampler(mnist.test, batch, new Rng(2));
  try {
    return await withEngine(net, { workers, backend: 'wasm' }, async (engine) => {
      await engine.restore(params, presets.seed.train.optimizer);
      const once = () => engine.predict(sampler.next().images, batch);
      for (let i = 0; i < 3; i++) await once();
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000 * 0.5 || n < 5) {
        await once();
        n++;
      }
      return (n * batch) / ((performance.now() - t0) / 1000);
    });
  } finally {
    disposeParams(params);
  }
}

function debianPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}

function pytorchPeer(threads: number): Row | undefined {
  const script = join(peerDir, 'peer_pytorch.py');
  const py = debianPython();
  if (!existsSync(script) || py === undefined) return undefined;
  const iters = quick ? 100 : 400;
  const r = spawnSync(py, [script, mnistDir(), String(threads), String(iters)], { encoding: 'utf8' });
  const m = /torch (\S+) threads=(\d+) train_images_per_s=(\d+) infer_images_per_s=(\d+)/.exec(r.stdout);
  if (!m) {
    log(`PyTorch peer failed: ${r.stderr.trim().split('\n').at(-1)}`);
    return undefined;
  }
  return { system: `PyTorch ${m[1]}, ${threads} thread${threads > 1 ? 's' : ''}`, trainImagesPerSecond: Number(m[3]), inferImagesPerSecond: Number(m[4]) };
}

function tfjsPeer(): Row | undefined {
  const script = join(peerDir, 'peer_tfjs.cjs');
  if (!existsSync(script)) return undefined;
  const r = spawnSync(process.execPath, [script, 'wasm', quick ? '15' : '40'], {
    encoding: 'utf8',
    env: { ...process.env, NODE_PATH: join(root, 'node_modules') },
  });
  const m = /tfjs (\S+) backend=wasm train_images_per_s=(\d+) infer_images_per_s=(\d+)/.exec(r.stdout);
  if (!m) {
    log(`stock TensorFlow.js peer failed: ${r.stderr.trim().split('\n').at(-1)}`);
    return undefined;
  }
  return { system: `TensorFlow.js ${m[1]} wasm, stock kernels (peer script)`, trainImagesPerSecond: Number(m[2]), inferImagesPerSecond: Number(m[3]) };
}

/** Wall seconds of `convlab train` (default preset) until the accuracy line, and the accuracy it printed. */
function timeToAccuracy(): { seconds: number; trainSeconds: number; accuracy: number } | undefined {
  const out = join(root, 'bench', `.tta-${process.pid}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(root, 'bin', 'convlab.js'), 'train', '--out', out], { encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  spawnSync('rm', ['-rf', out]);
  const acc = /Accuracy on test set: ([\d.]+)%/.exec(r.stdout);
  const trained = /trained in ([\d.]+) s/.exec(r.stdout);
  if (!acc || !trained) {
    log(`time-to-accuracy run failed: ${r.stderr.trim()}`);
    return undefined;
  }
  return { seconds: wall, trainSeconds: Number(trained[1]), accuracy: Number(acc[1]) / 100 };
}

const cores = availableParallelism();
const workers = defaultWorkerCount();
log(`bench: ${cores} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${seconds} s per measurement${quick ? ', quick' : ''}`);

// The peer runs before and after convlab, and its row is the mean: a shared machine drifts by several
// percent over minutes, and bracketing keeps the ratio honest about it.
const peers = !args.has('--no-peers');
const torchRuns: Row[] = [];
const measureTorch = () => {
  log('measuring the PyTorch peer...');
  const r = pytorchPeer(Math.min(2, cores));
  if (r) torchRuns.push(r);
};
if (peers) {
  measureTorch();
  log('measuring stock TensorFlow.js...');
  const stock = tfjsPeer();
  if (stock) rows.push(stock);
}

log('measuring convlab, one thread...');
rows.push({ system: 'convlab wasm, 1 thread (no workers)', trainImagesPerSecond: await trainThroughput(0), inferImagesPerSecond: await inferThroughput(0) });
log('measuring convlab, 1 worker...');
rows.push({ system: 'convlab wasm, 1 worker', trainImagesPerSecond: await trainThroughput(1) });
if (workers > 1) {
  log(`measuring convlab, ${workers} workers...`);
  rows.push({
    system: `convlab wasm, ${workers} workers`,
    trainImagesPerSecond: await trainThroughput(workers),
    inferImagesPerSecond: await inferThroughput(workers),
  });
}

if (peers) {
  if (torchRuns.length > 0) measureTorch();
  const mean = (k: 'trainImagesPerSecond' | 'inferImagesPerSecond') => torchRuns.reduce((a, r) => a + r[k]!, 0) / torchRuns.length;
  rows.unshift(
    torchRuns.length > 0
      ? {
          system: `${torchRuns[0].system} (mean of ${torchRuns.length} runs, before and after)`,
          trainImagesPerSecond: mean('trainImagesPerSecond'),
          inferImagesPerSecond: mean('inferImagesPerSecond'),
          runs: torchRuns.map(({ trainImagesPerSecond, inferImagesPerSecond }) => ({ trainImagesPerSecond, inferImagesPerSecond })),
        }
      : { system: 'PyTorch', note: 'not measured: Debian python3 cannot import torch (apt-get install python3-torch)' },
  );
}

let tta: ReturnType<typeof timeToAccuracy>;
if (!quick && !args.has('--no-tta')) {
  log('measuring time to ≥ 99.0% test accuracy (default preset)...');
  tta = timeToAccuracy();
}

const peer = rows.find((r) => r.system.startsWith('PyTorch') && r.trainImagesPerSecond !== undefined);
const ratio = (v?: number, p?: number) => (v === undefined || p === undefined ? '' : `${(v / p).toFixed(2)}x`);
const fmt = (v?: number) => (v === undefined ? '—' : Math.round(v).toLocaleString('en-US'));
const lines = [
  '| system | train images/s | vs PyTorch | inference images/s | vs PyTorch |',
  '|---|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.system}${r.note ? ` (${r.note})` : ''} | ${fmt(r.trainImagesPerSecond)} | ${ratio(r.trainImagesPerSecond, peer?.trainImagesPerSecond)} | ${fmt(r.inferImagesPerSecond)} | ${ratio(r.inferImagesPerSecond, peer?.inferImagesPerSecond)} |`,
  ),
];
console.log(lines.join('\n'));
const runs = rows.find((r) => r.runs)?.runs;
if (runs)
  console.log(
    `\nPyTorch runs (train / inference images/s): ${runs.map((r) => `${fmt(r.trainImagesPerSecond)} / ${fmt(r.inferImagesPerSecond)}`).join(', then ')}`,
  );
if (tta)
  console.log(
    `\ntime to accuracy: default preset reached ${(tta.accuracy * 100).toFixed(2)}% test accuracy; ${tta.trainSeconds.toFixed(0)} s of training, ${tta.seconds.toFixed(0)} s wall for the whole command`,
  );
await (await import('./kernels.ts')).printKernelBench(quick ? 8 : 20); // convlab's conv kernels vs XNNPACK, per kernel

const results = {
  date: new Date().toISOString(),
  machine: { cores, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, tfjs: tf.version.tfjs },
  secondsPerMeasurement: seconds,
  rows,
  timeToAccuracy: tta,
};
await writeFile(join(root, 'bench', 'results.json'), JSON.stringify(results, null, 2) + '\n');
log('wrote bench/results.json');
