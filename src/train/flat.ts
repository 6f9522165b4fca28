/**
 * The update rules, as one loop over a flat Float32Array of the parameters (weightSpecs order; layout.ts):
 * the only update convlab runs. Each training worker runs it on its shard of the shared weights
 * (parallel.ts, worker.ts); the in-thread step and the page run it on the whole vector, reading the
 * gradients out of their tensors first (step.ts).
 *
 * SimdAdam (the default's) runs in wasm SIMD in float32; FlatAdam is its JavaScript fallback for engines
 * without wasm SIMD, and SGD and RMSProp are JavaScript loops, which compute in doubles and store float32.
 * test/train/optimizers.test.ts checks them against the formulas in doubles and against the same rules as
 * tensor ops (test/helpers/tensor-optimizers.ts). Their state exports in per-parameter slots
 * (OptimizerState, optimizer.ts), whichever engine and however many workers wrote it.
 */
import type { OptimizerConfig, OptimizerType } from '../model/config.ts';
import { paramCount, type ParamSlice } from './layout.ts';
import type { OptimizerState } from './optimizer.ts';
import { updateModuleBase64 } from '../kernels/update-module.ts';

export { paramCount, paramLayout, type ParamSlice } from './layout.ts';

export abstract class FlatOptimizer {
  abstract readonly type: OptimizerType;
  /** Updates applied so far. */
  step = 0;
  /** One array per slot, covering the whole flat vector. */
  protected readonly slots = new Map<string, Float32Array>();

  constructor(
    protected readonly layout: ParamSlice[],
    slotNames: string[],
  ) {
    const n = paramCount(layout);
    for (const s of slotNames) this.slots.set(s, new Float32Array(n));
  }

  /** θ ← update(θ, g) in place, at `learningRate`. */
  abstract apply(theta: Float32Array, g: Float32Array, learningRate: number): void;

  protected slot(name: string): Float32Array {
    return this.slots.get(name)!;
  }

  exportState(): OptimizerState {
    const slots: OptimizerState['slots'] = {};
    // Slots appear once the first update has created them, as with the tensor versions.
    if (this.step > 0) {
      for (const [slot, values] of this.slots) {
        slots[slot] = Object.fromEntries(this.layout.map((p) => [p.name, values.slice(p.offset, p.offset + p.size)]));
      }
    }
    return { type: this.type, step: this.step, slots };
  }

  importState(state: OptimizerState): void {
    if (state.type !== this.type) throw new Error(`optimizer state is for ${state.type}, not ${this.type}`);
    for (const values of this.slots.values()) values.fill(0);
    this.step = state.step;
    for (const [slot, saved] of Object.entries(state.slots)) {
      const store = this.slots.get(slot);
      if (store === undefined) throw new Error(`${this.type} state has an unknown slot "${slot}"`);
      for (const [name, values] of Object.entries(saved)) {
        const p = this.layout.find((q) => q.name === name);
        if (p === undefined || p.size !== values.length) throw new Error(`${this.type} state ${slot} for ${name} does not fit the network`);
        store.set(values, p.offset);
      }
    }
  }
}

/** Adam (Kingma & Ba, 2015, Algorithm 1): m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; θ ← θ − α·m̂/(√v̂ + ε). */
export class FlatAdam extends FlatOptimizer {
  readonly type = 'adam';
  constructor(
    layout: ParamSlice[],
    readonly options: { beta1: number; beta2: number; epsilon: number },
  ) {
    super(layout, ['m', 'v']);
  }

  apply(theta: Float32Array, g: Float32Array, learningRate: number): void {
    const { beta1, beta2, epsilon } = this.options;
    this.step += 1;
    const t = this.step;
    // bias-correct both moments: m̂ = m/(1−β1^t), v̂ = v/(1−β2^t)
    // α·m̂/(√v̂ + ε) = (α/(1−β1^t))·m / (√v·(1/√(1−β2^t)) + ε): the corrections hoisted out of the loop
    // (one division and one square root per weight: 0.9 ms instead of 1.6 for the seed network).
    const a = learningRate / (1 - beta1 ** t);
    const s = 1 / Math.sqrt(1 - beta2 ** t);
    const [o1, o2] = [1 - beta1, 1 - beta2];
    const m = this.slot('m');
    const v = this.slot('v');
    for (let i = 0; i < theta.length; i++) {
      const gi = g[i];
      const mi = (m[i] = beta1 * m[i] + o1 * gi);
      const vi = (v[i] = beta2 * v[i] + o2 * gi * gi);
      theta[i] -= (a * mi) / (Math.sqrt(vi) * s + epsilon);
    }
  }
}

/**
 * The same Adam in wasm SIMD (src/kernels/update.wat), four values at a time in float32 and operation for
 * operation as Algorithm 1 (m/c1, √(v/c2); 1−β computed in float32), with the weighted sum of the workers' gradients folded into the same
 * pass. Its moments live in the module's memory for the whole run.
 */
export class SimdAdam extends FlatOptimizer {
  readonly type = 'adam';
  private readonly kernel: { adam(...args: number[]): void };
  private readonly n: number;
  private readonly views: { theta: Float32Array; g0: Float32Array; g1: Float32Array; m: Float32Array; v: Float32Array };
  private readonly addresses: { theta: number; g0: number; g1: number; m: number; v: number };

  constructor(
    layout: ParamSlice[],
    readonly options: { beta1: number; beta2: number; epsilon: number },
  ) {
    super(layout, []);
    this.n = paramCount(layout);
    const padded = Math.ceil(this.n / 4) * 4; // the kernel works in fours; the padding stays zero
    const instance = new WebAssembly.Instance(new WebAssembly.Module(base64Bytes(updateModuleBase64)), {});
    const memory = instance.exports.memory as WebAssembly.Memory;
    const bytes = 5 * padded * 4;
    memory.grow(Math.max(0, Math.ceil(bytes / 65536) - memory.buffer.byteLength / 65536));
    const names = ['theta', 'g0', 'g1', 'm', 'v'] as const;
    this.addresses = Object.fromEntries(names.map((name, i) => [name, i * padded * 4])) as SimdAdam['addresses'];
    this.views = Object.fromEntries(names.map((name) => [name, new Float32Array(memory.buffer, this.addresses[name], padded)])) as SimdAdam['views'];
    this.slots.set('m', this.views.m);
    this.slots.set('v', this.views.v);
    this.kernel = instance.exports as unknown as SimdAdam['kernel'];
  }

  apply(theta: Float32Array, g: Float32Array, learningRate: number): void {
    this.applyWeighted(theta, [g], [1], learningRate);
  }

  /** The update with g = Σ weights[i]·grads[i] (in order), without forming g first. */
  applyWeighted(theta: Float32Array, grads: Float32Array[], weights: number[], learningRate: number): void {
    const { beta1, beta2, epsilon } = this.options;
    const { views, addresses, n } = this;
    this.step += 1;
    const t = this.step;
    let w = weights;
    if (grads.length > 2) {
      // Rare (3+ workers): sum in JavaScript, in order, then one input.
      const g = views.g0.subarray(0, n);
      g.fill(0);
      grads.forEach((gi, i) => {
        for (let j = 0; j < n; j++) g[j] += weights[i] * gi[j];
      });
      w = [1, 0];
    } else {
      views.g0.set(grads[0]);
      if (grads.length === 2) views.g1.set(grads[1]);
      w = grads.length === 2 ? weights : [weights[0], 0];
    }
    views.theta.set(theta);
    const g1 = grads.length === 2 ? addresses.g1 : addresses.g0;
    this.kernel.adam(
      addresses.theta,
      addresses.g0,
      g1,
      w[0],
      w[1],
      addresses.m,
      addresses.v,
      views.theta.length,
      beta1,
      beta2,
      learningRate,
      1 - beta1 ** t,
      1 - beta2 ** t,
      epsilon,
    );
    theta.set(views.theta.subarray(0, n));
  }
}

/** Whether this JavaScript engine runs wasm SIMD (Node 20 and current browsers do). */
export function hasWasmSimd(): boolean {
  try {
    return WebAssembly.validate(base64Bytes(updateModuleBase64));
  } catch {
    return false;
  }
}

function base64Bytes(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
}

/**
 * SGD with momentum, as TensorFlow's MomentumOptimizer and PyTorch's SGD write it:
 *   v ← μ·v + g;  θ ← θ − lr·v        (Nesterov: θ ← θ − lr·(g + μ·v))
 * With μ = 0 it is plain SGD and keeps no state.
 */
export class FlatSgd extends FlatOptimizer {
  readonly type = 'sgd';
  constructor(
    layout: ParamSlice[],
    readonly options: { momentum: number; nesterov: boolean },
  ) {
    super(layout, options.momentum === 0 ? [] : ['velocity']);
  }

  apply(theta: Float32Array, g: Float32Array, learningRate: number): void {
    const { momentum, nesterov } = this.options;
    this.step += 1;
    if (momentum === 0) {
      for (let i = 0; i < theta.length; i++) theta[i] -= learningRate * g[i];
      return;
    }
    const v = this.slot('velocity');
    for (let i = 0; i < theta.length; i++) {
      const vi = (v[i] = momentum * v[i] + g[i]);
      theta[i] -= learningRate * (nesterov ? g[i] + momentum * vi : vi);
    }
  }
}

/**
 * RMSProp (Hinton, Coursera lecture 6e), with TensorFlow's optional momentum:
 *   ms ← ρ·ms + (1−ρ)·g²;  mom ← μ·mom + lr·g/(√ms + ε);  θ ← θ − mom
 */
export class FlatRmsProp extends FlatOptimizer {
  readonly type = 'rmsprop';
  constructor(
    layout: ParamSlice[],
    readonly options: { rho: number; momentum: number; epsilon: number },
  ) {
    super(layout, options.momentum === 0 ? ['ms'] : ['ms', 'mom']);
  }

  apply(theta: Float32Array, g: Float32Array, learningRate: number): void {
    const { rho, momentum, epsilon } = this.options;
    this.step += 1;
    const ms = this.slot('ms');
    const mom = momentum === 0 ? undefined : this.slot('mom');
    for (let i = 0; i < theta.length; i++) {
      const gi = g[i];
      const msi = (ms[i] = rho * ms[i] + (1 - rho) * gi * gi);
      const update = (learningRate * gi) / (Math.sqrt(msi) + epsilon);
      if (mom === undefined) theta[i] -= update;
      else theta[i] -= mom[i] = momentum * mom[i] + update;
    }
  }
}

/** The flat update rule a config names. */
export function makeFlatOptimizer(config: OptimizerConfig, layout: ParamSlice[]): FlatOptimizer {
  switch (config.type) {
    case 'adam': {
      const options = { beta1: config.beta1, beta2: config.beta2, epsilon: config.epsilon };
      return hasWasmSimd() ? new SimdAdam(layout, options) : new FlatAdam(layout, options);
    }
    case 'sgd':
      return new FlatSgd(layout, { momentum: config.momentum, nesterov: config.nesterov });
    case 'rmsprop':
      return new FlatRmsProp(layout, { rho: config.rho, momentum: config.momentum, epsilon: config.epsilon });
  }
}

/** out = Σ weights[i]·g[i], in order, in one pass (the usual 1 and 2 workers spelled out). */
export function combine(out: Float32Array, g: Float32Array[], weights: number[]): void {
  if (g.length === 1) {
    const [g0] = g;
    const [w0] = weights;
    for (let j = 0; j < out.length; j++) out[j] = w0 * g0[j];
    return;
  }
  if (g.length === 2) {
    const [g0, g1] = g;
    const [w0, w1] = weights;
    for (let j = 0; j < out.length; j++) out[j] = w0 * g0[j] + w1 * g1[j];
    return;
  }
  for (let j = 0; j < out.length; j++) {
    let sum = 0;
    for (let i = 0; i < g.length; i++) sum += weights[i] * g[i][j];
    out[j] = sum;
  }
}
