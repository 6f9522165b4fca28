/**
 * SGD with momentum and RMSProp against their formulas in plain doubles, the flat rules (what convlab runs)
 * against the tensor references (test/helpers/tensor-optimizers.ts); state export/import; schedules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { scheduledRate } from '../../src/train/optimizer.ts';
import { FlatAdam, FlatRmsProp, FlatSgd, SimdAdam, makeFlatOptimizer, type FlatOptimizer, type ParamSlice } from '../../src/train/flat.ts';
import type { OptimizerConfig } from '../../src/model/config.ts';

import { adamReference, gradients, start } from '../helpers/optimizer-reference.ts';
import { Adam, RmsProp, Sgd, makeTensorOptimizer as makeOptimizer, type Optimizer } from '../helpers/tensor-optimizers.ts';

function sgdReference(lr: number, mu: number, nesterov: boolean): number[] {
  const theta = [...start];
  const v = theta.map(() => 0);
  for (const g of gradients) {
    for (let i = 0; i < theta.length; i++) {
      v[i] = mu * v[i] + g[i];
      theta[i] -= lr * (nesterov ? g[i] + mu * v[i] : v[i]);
    }
  }
  return theta;
}

function rmsReference(lr: number, rho: number, mu: number, eps: number): number[] {
  const theta = [...start];
  const ms = theta.map(() => 0);
  const mom = theta.map(() => 0);
  for (const g of gradients) {
    for (let i = 0; i < theta.length; i++) {
      ms[i] = rho * ms[i] + (1 - rho) * g[i] * g[i];
      mom[i] = mu * mom[i] + (lr * g[i]) / (Math.sqrt(ms[i]) + eps);
      theta[i] -= mom[i];
    }
  }
  return theta;
}

function run(opt: Optimizer, lr: number, steps = gradients): number[] {
  const theta = tf.variable(tf.tensor1d(start));
  for (const g of steps) {
    const gt = tf.tensor1d(g);
    opt.apply(new Map([['w', theta]]), new Map([['w', gt]]), lr);
    gt.dispose();
  }
  const out = Array.from(theta.dataSync());
  theta.dispose();
  return out;
}

const close = (got: number[], want: number[], what: string) =>
  got.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5, `${what} weight ${i}: ${x} vs ${want[i]}`));

for (const backend of ['cpu', 'wasm'] as const) {
  test(`${backend}: SGD (plain, momentum, Nesterov) and RMSProp (with and without momentum) match their formulas`, async () => {
    await useBackend(backend);
    for (const [mu, nesterov] of [
      [0, false],
      [0.9, false],
      [0.9, true],
    ] as const) {
      const opt = new Sgd({ momentum: mu, nesterov });
      close(run(opt, 0.1), sgdReference(0.1, mu, nesterov), `sgd μ=${mu}${nesterov ? ' nesterov' : ''}`);
      assert.equal(opt.step, 4);
      opt.dispose();
    }
    for (const mu of [0, 0.5]) {
      const opt = new RmsProp({ rho: 0.9, momentum: mu, epsilon: 1e-7 });
      close(run(opt, 0.01), rmsReference(0.01, 0.9, mu, 1e-7), `rmsprop μ=${mu}`);
      opt.dispose();
    }
  });
}

test('the flat SGD (plain, momentum, Nesterov) and RMSProp (with and without momentum), which convlab runs, match their formulas', () => {
  const layout: ParamSlice[] = [{ name: 'w', shape: [3], offset: 0, size: 3 }];
  const flatRun = (opt: FlatOptimizer, lr: number) => {
    const theta = Float32Array.from(start);
    for (const g of gradients) opt.apply(theta, Float32Array.from(g), lr);
    assert.equal(opt.step, gradients.length);
    return Array.from(theta);
  };
  for (const [mu, nesterov] of [
    [0, false],
    [0.9, false],
    [0.9, true],
  ] as const) {
    close(flatRun(new FlatSgd(layout, { momentum: mu, nesterov }), 0.1), sgdReference(0.1, mu, nesterov), `flat sgd μ=${mu}${nesterov ? ' nesterov' : ''}`);
  }
  for (const mu of [0, 0.5]) {
    close(flatRun(new FlatRmsProp(layout, { rho: 0.9, momentum: mu, epsilon: 1e-7 }), 0.01), rmsReference(0.01, 0.9, mu, 1e-7), `flat rmsprop μ=${mu}`);
  }
});

test('an optimizer continued from its exported state makes exactly the updates of one that never stopped', async () => {
  await useBackend('wasm');
  const make = [
    () => new Sgd({ momentum: 0.9, nesterov: true }),
    () => new RmsProp({ rho: 0.9, momentum: 0.5, epsilon: 1e-7 }),
    () => new Adam({ beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }),
  ];
  for (const create of make) {
    const straight = create();
    const want = run(straight, 0.01);
    straight.dispose();

    const first = create();
    const theta = tf.variable(tf.tensor1d(start));
    const params = new Map([['w', theta]]);
    const step = (opt: Optimizer, g: number[]) => {
      const gt = tf.tensor1d(g);
      opt.apply(params, new Map([['w', gt]]), 0.01);
      gt.dispose();
    };
    gradients.slice(0, 2).forEach((g) => step(first, g));
    const state = first.exportState();
    // Through JSON and back, as a checkpoint stores it.
    const revived = JSON.parse(
      JSON.stringify({
        ...state,
        slots: Object.fromEntries(Object.entries(state.slots).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([n, a]) => [n, Array.from(a)]))])),
      }),
    );
    for (const slot of Object.values(revived.slots) as Record<string, number[] | Float32Array>[])
      for (const n of Object.keys(slot)) slot[n] = Float32Array.from(slot[n]);
    first.dispose();
    const second = create();
    second.importState(revived, params);
    assert.equal(second.step, 2);
    gradients.slice(2).forEach((g) => step(second, g));
    assert.deepEqual(Array.from(theta.dataSync()), want, `${second.type} resumed differs`);
    second.dispose();
    theta.dispose();
  }
});

test('schedules: constant, cosine from start to final, step halving', () => {
  assert.equal(scheduledRate({ type: 'constant' }, 0.1, 50, 100), 0.1);
  assert.equal(scheduledRate({ type: 'cosine', finalLearningRate: 0.001 }, 0.1, 0, 101), 0.1);
  assert.ok(Math.abs(scheduledRate({ type: 'cosine', finalLearningRate: 0.001 }, 0.1, 100, 101) - 0.001) < 1e-12);
  const step = { type: 'step', every: 10, factor: 0.5 } as const;
  assert.deepEqual(
    [0, 9, 10, 19, 20, 35].map((i) => scheduledRate(step, 0.1, i, 100)),
    [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125],
  );
});

test('the flat update rules of the worker pool match the tensor ones, and their states are interchangeable', async () => {
  await useBackend('wasm');
  // Two parameters in one flat vector, to exercise the layout's offsets.
  const layout: ParamSlice[] = [
    { name: 'a', shape: [2], offset: 0, size: 2 },
    { name: 'b', shape: [1], offset: 2, size: 1 },
  ];
  const configs: OptimizerConfig[] = [
    { type: 'sgd', learningRate: 0.1, momentum: 0, nesterov: false, schedule: { type: 'constant' } },
    { type: 'sgd', learningRate: 0.1, momentum: 0.9, nesterov: true, schedule: { type: 'constant' } },
    { type: 'rmsprop', learningRate: 0.01, rho: 0.9, momentum: 0.5, epsilon: 1e-7, schedule: { type: 'constant' } },
    { type: 'rmsprop', learningRate: 0.01, rho: 0.9, momentum: 0, epsilon: 1e-7, schedule: { type: 'constant' } },
    { type: 'adam', learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, schedule: { type: 'constant' } },
  ];
  const tensorRun = (config: OptimizerConfig, opt: Optimizer, from: number[], steps: number[][]) => {
    const params = new Map([
      ['a', tf.variable(tf.tensor1d(from.slice(0, 2)))],
      ['b', tf.variable(tf.tensor1d(from.slice(2)))],
    ]);
    for (const g of steps) {
      const grads = new Map([
        ['a', tf.tensor1d(g.slice(0, 2))],
        ['b', tf.tensor1d(g.slice(2))],
      ]);
      opt.apply(params, grads, config.learningRate);
      tf.dispose([...grads.values()]);
    }
    const out = [...params.get('a')!.dataSync(), ...params.get('b')!.dataSync()];
    tf.dispose([...params.values()]);
    return { out, params };
  };
  // Adam twice: the wasm SIMD one (what the workers use) and the JavaScript fallback.
  const adamOptions = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
  const makers: [OptimizerConfig, () => FlatOptimizer][] = [
    ...configs.map((c): [OptimizerConfig, () => FlatOptimizer] => [c, () => makeFlatOptimizer(c, layout)]),
    [configs[4], () => new FlatAdam(layout, adamOptions)],
  ];
  assert.ok(makeFlatOptimizer(configs[4], layout) instanceof SimdAdam, 'Node 20 has wasm SIMD');
  for (const [config, make] of makers) {
    const what = `${make().constructor.name} ${JSON.stringify(config)}`;
    const flat = make();
    const theta = Float32Array.from(start);
    for (const g of gradients) flat.apply(theta, Float32Array.from(g), config.learningRate);
    const tensor = makeOptimizer(config);
    const { out: want } = tensorRun(config, tensor, start, gradients);
    tensor.dispose();
    close(Array.from(theta), want, `flat ${what}`);
    if (config.type === 'adam') close(Array.from(theta), adamReference(start, gradients, config.learningRate), `flat ${what} vs Algorithm 1`);
    assert.equal(flat.step, gradients.length);

    // Stop the flat one after two steps; continue as the tensor one (and as a flat one) from its state.
    const first = make();
    const half = Float32Array.from(start);
    for (const g of gradients.slice(0, 2)) first.apply(half, Float32Array.from(g), config.learningRate);
    const state = first.exportState();
    const asTensor = makeOptimizer(config);
    asTensor.importState(
      state,
      new Map([
        ['a', tf.variable(tf.zeros([2]))],
        ['b', tf.variable(tf.zeros([1]))],
      ]),
    );
    close(tensorRun(config, asTensor, Array.from(half), gradients.slice(2)).out, want, `flat → tensor ${what}`);
    asTensor.dispose();
    const asFlat = make();
    asFlat.importState(state);
    for (const g of gradients.slice(2)) asFlat.apply(half, Float32Array.from(g), config.learningRate);
    assert.deepEqual(Array.from(half), Array.from(theta), `flat → flat ${what} must be exact`);
  }
  // A state that does not fit the layout is refused.
  const adam = makeFlatOptimizer(configs[4], layout);
  // The SIMD Adam with two workers' gradients weighted in its own pass equals it on their weighted sum.
  const [w0, w1] = [0.25, 0.75];
  const two = makeFlatOptimizer(configs[4], layout) as SimdAdam;
  const one = makeFlatOptimizer(configs[4], layout) as SimdAdam;
  const [t2, t1] = [Float32Array.from(start), Float32Array.from(start)];
  for (let k = 0; k + 1 < gradients.length; k += 2) {
    const [ga, gb] = [Float32Array.from(gradients[k]), Float32Array.from(gradients[k + 1])];
    two.applyWeighted(t2, [ga, gb], [w0, w1], 0.05);
    one.apply(
      t1,
      ga.map((v, j) => w0 * v + w1 * gb[j]),
      0.05,
    );
  }
  close(Array.from(t2), Array.from(t1), 'weighted pass');
  assert.notDeepEqual(Array.from(t2), start);
  assert.throws(() => adam.importState({ type: 'adam', step: 1, slots: { m: { a: new Float32Array(3) } } }), /does not fit/);
  assert.throws(() => adam.importState({ type: 'sgd', step: 1, slots: {} }), /for sgd, not adam/);
});
