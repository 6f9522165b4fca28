/**
 * Per-kernel timings for `npm run bench` (and `npx tsx bench/kernels.ts` alone): convlab's generated
 * convolution kernels (Winograd where the route takes it, else the direct kernel) against the direct kernel
 * alone and XNNPACK (the wasm backend's own) on the same shapes, in the same process, runs alternating so that a
 * busy machine slows all alike; the figure is the least CPU time (not wall time) of the runs. G MAC/s counts the
 * direct convolution's multiply-adds for every column (for Winograd an effective rate). Also which configs in
 * examples/ take the fast paths and which fall back.
 */
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.ts';
import { allowDirectConv, allowWinograd, convRoutes } from '../src/kernels/wasm.ts';
import { loadRunConfigFile, resolveRunConfig } from '../src/model/validate.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface KernelRow {
  kernel: string;
  shape: string;
  macs: number;
  route: string; // the kernel convlab's routing takes: winograd, direct or xnnpack
  convlabMs: number;
  directMs: number; // the direct kernel alone (Winograd off)
  xnnpackMs: number;
}

interface ConvCase {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
}

/** 32 images: one worker's half of the batch of 64. */
const cases: ConvCase[] = [
  { name: 'seed conv1', x: [32, 28, 28, 1], w: [5, 5, 1, 16] },
  { name: 'seed conv2', x: [32, 14, 14, 16], w: [5, 5, 16, 36] },
  { name: 'smallest conv2', x: [32, 14, 14, 4], w: [5, 5, 4, 7] },
  { name: 'cifar conv2', x: [32, 16, 16, 64], w: [5, 5, 64, 64] },
];

type Kernel = 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter';

function runOnce(kernel: Kernel, x: tf.Tensor4D, w: tf.Tensor4D, dy: tf.Tensor4D): number {
  const t0 = process.cpuUsage();
  const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined };
  const out =
    kernel === 'Conv2D'
      ? tf.engine().runKernel('Conv2D', { x, filter: w }, attrs as never)
      : kernel === 'Conv2DBackpropInput'
        ? tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: x.shape } as never)
        : tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: w.shape } as never);
  // CPU time, not wall time: on a shared machine the wall clock also counts the time other processes had the
  // core. The wasm kernels run synchronously on this thread.
  const { user, system } = process.cpuUsage(t0);
  const ms = (user + system) / 1000;
  (out as tf.Tensor).dispose();
  return ms;
}

/** Fastest of `rounds` alternating runs of each side. */
export async function kernelTimings(rounds = 20): Promise<KernelRow[]> {
  await useBackend('wasm');
  const rows: KernelRow[] = [];
  for (const c of cases) {
    const x = tf.randomNormal(c.x, 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal(c.w, 0, 0.1, 'float32', 2) as tf.Tensor4D;
    const dy = tf.randomNormal([c.x[0], c.x[1], c.x[2], c.w[3]], 0, 1, 'float32', 3) as tf.Tensor4D;
    const [n, h, wd, cin] = c.x;
    const macs = n * h * wd * c.w[0] * c.w[1] * cin * c.w[3];
    const kernels: Kernel[] = cin === 1 ? ['Conv2D'] : ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'];
    for (const kernel of kernels) {
      const best = { convlab: Infinity, direct: Infinity, xnnpack: Infinity };
      const sides: [keyof typeof best, boolean, boolean][] = [
        ['convlab', true, true],
        ['direct', true, false],
        ['xnnpack', false, false],
      ];
      for (let r = 0; r < rounds + 2; r++) {
        for (const [side, direct, winograd] of sides) {
          allowDirectConv(direct);
          allowWinograd(winograd);
          const ms = runOnce(kernel, x, w, dy);
          if (r >= 2) best[side] = Math.min(best[side], ms);
        }
      }
      allowDirectConv(true);
      allowWinograd(true);
      const routes = convRoutes(c.x, c.w, 1, 'same');
      const route = kernel === 'Conv2D' ? routes.forward : kernel === 'Conv2DBackpropInput' ? routes.inputGradient : routes.filterGradient;
      rows.push({
        kernel: `${c.name} ${kernel}`,
        shape: `${c.x.join('x')} * ${c.w.join('x')}`,
        macs,
        route,
        convlabMs: best.convlab,
        directMs: best.direct,
        xnnpackMs: best.xnnpack,
      });
    }
    tf.dispose([x, w, dy]);
  }
  return rows;
}

export interface ConfigRoute {
  config: string;
  layers: string[];
}

/** Per example config and conv layer: which kernel runs its forward, input-gradient and filter-gradient products. */
export async function exampleRoutes(): Promise<ConfigRoute[]> {
  const dir = join(root, 'examples');
  const out: ConfigRoute[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()) {
    try {
      const draft = await loadRunConfigFile(join(dir, file));
      const cifar = file.startsWith('cifar');
      const data = cifar
        ? { height: 32, width: 32, channels: 3, classes: 10, name: 'cifar10' }
        : { height: 28, width: 28, channels: 1, classes: 10, name: 'mnist' };
      const net = resolveRunConfig(draft, data, file).network;
      let [h, w, c] = [net.input.height, net.input.width, net.input.channels];
      const layers: string[] = [];
      net.conv.forEach((block, i) => {
        const r = convRoutes([32, h, w, c], [block.size, block.size, c, block.filters], block.stride, block.padding);
        layers.push(`conv${i + 1} fwd ${r.forward}, dx ${i === 0 ? '(none)' : r.inputGradient}, dW ${r.filterGradient}`);
        const conv = (s: number) => (block.padding === 'same' ? Math.ceil(s / block.stride) : Math.ceil((s - block.size + 1) / block.stride));
        const pooled = (s: number) => (block.pool === 'none' ? s : Math.ceil(s / block.poolSize));
        [h, w, c] = [pooled(conv(h)), pooled(conv(w)), block.filters];
      });
      out.push({ config: file, layers });
    } catch (err) {
      out.push({ config: file, layers: [`not read: ${(err as Error).message}`] });
    }
  }
  return out;
}

export function formatKernelTable(rows: KernelRow[]): string {
  const gmacs = (macs: number, ms: number) => (macs / ms / 1e6).toFixed(1);
  const lines = [
    'kernel                                 | route     | convlab ms | G MAC/s | direct ms | G MAC/s | XNNPACK ms | G MAC/s | vs XNNPACK',
    '---------------------------------------|-----------|-----------:|--------:|----------:|--------:|-----------:|--------:|----------:',
  ];
  for (const r of rows) {
    const route = r.route.split(' ')[0];
    lines.push(
      `${r.kernel.padEnd(39)}| ${route.padEnd(9)} | ${r.convlabMs.toFixed(2).padStart(10)} | ${gmacs(r.macs, r.convlabMs).padStart(7)} | ${r.directMs.toFixed(2).padStart(9)} | ${gmacs(r.macs, r.directMs).padStart(7)} | ${r.xnnpackMs.toFixed(2).padStart(10)} | ${gmacs(r.macs, r.xnnpackMs).padStart(7)} | ${(r.xnnpackMs / r.convlabMs).toFixed(2).padStart(8)}x`,
    );
  }
  return lines.join('\n');
}

/** The hook `npm run bench` calls: prints both tables and returns them for bench/results.json. */
export async function printKernelBench(rounds = 20): Promise<{ kernels: KernelRow[]; routes: ConfigRoute[] }> {
  const kernels = await kernelTimings(rounds);
  const routes = await exampleRoutes();
  console.log(`\nconvolution kernels, one thread, ${process.version}, least CPU time of ${rounds} alternating runs each:\n${formatKernelTable(kernels)}`);
  console.log('\nwhich kernels the example configs use (winograd, direct = convlab generated; xnnpack = fallback):');
  for (const r of routes) console.log(`  ${r.config.padEnd(24)} ${r.layers.join('; ')}`);
  return { kernels, routes };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--rounds');
  await printKernelBench(i > 0 ? Number(process.argv[i + 1]) : 20);
}
