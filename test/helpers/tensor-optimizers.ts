/**
 * The update rules written as tensor ops, one backend op per formula term: a reference for the flat rules
 * that convlab runs (src/train/flat.ts), computed another way (on the backend, in float32, op by op as the
 * papers write them). No product code uses these; test/train/optimizers.test.ts checks them against the
 * formulas in doubles and the flat rules against them.
 */
import * as tf from '@tensorflow/tfjs';
import type { OptimizerConfig, OptimizerType } from '../../src/model/config.ts';
import type { OptimizerState } from '../../src/train/optimizer.ts';

export interface Optimizer {
  readonly type: OptimizerType;
  /** Updates applied so far. */
  readonly step: number;
  /** One update of every parameter that has a gradient, at `learningRate`. */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, learningRate: number): void;
  exportState(): OptimizerState;
  /** Continues from a saved state: the next `apply` is step `state.step + 1`. */
  importState(state: OptimizerState, params: Map<string, tf.Variable>): void;
  dispose(): void;
}

/** Slot bookkeeping shared by every optimizer: zero-initialised tensors created on first use. */
export abstract class SlotOptimizer implements Optimizer {
  abstract readonly type: OptimizerType;
  step = 0;
  protected readonly slots = new Map<string, Map<string, tf.Variable>>();

  abstract apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, learningRate: number): void;

  /** The slot tensor for `param`, zeros like it the first time. */
  protected slot(slot: string, param: string, like: tf.Tensor): tf.Variable {
    let store = this.slots.get(slot);
    if (store === undefined) this.slots.set(slot, (store = new Map()));
    let s = store.get(param);
    if (s === undefined) {
      const zeros = tf.zerosLike(like);
      s = tf.variable(zeros, false);
      zeros.dispose();
      store.set(param, s);
    }
    return s;
  }

  protected slotMap(slot: string): Map<string, tf.Variable> {
    let store = this.slots.get(slot);
    if (store === undefined) this.slots.set(slot, (store = new Map()));
    return store;
  }

  exportState(): OptimizerState {
    const slots: OptimizerState['slots'] = {};
    for (const [slot, store] of this.slots) {
      slots[slot] = Object.fromEntries([...store].map(([name, t]) => [name, t.dataSync() as Float32Array]));
    }
    return { type: this.type, step: this.step, slots };
  }

  importState(state: OptimizerState, params: Map<string, tf.Variable>): void {
    if (state.type !== this.type) throw new Error(`optimizer state is for ${state.type}, not ${this.type}`);
    this.dispose();
    this.step = state.step;
    for (const [slot, saved] of Object.entries(state.slots)) {
      const store = this.slotMap(slot);
      for (const [name, values] of Object.entries(saved)) {
        const like = params.get(name);
        if (like === undefined || like.size !== values.length) throw new Error(`${this.type} state ${slot} for ${name} does not fit the network`);
        const initial = tf.tensor(values, like.shape);
        store.set(name, tf.variable(initial, false));
        initial.dispose();
      }
    }
  }

  dispose(): void {
    for (const store of this.slots.values()) {
      for (const s of store.values()) s.dispose();
      store.clear();
    }
  }
}

/**
 * Adam (Kingma & Ba, 2015, Algorithm 1), written out so it can be read, checked against the paper and
 * checkpointed. With the lesson's TensorFlow 1.x defaults: β1 0.9, β2 0.999, ε 1e-8.
 */

export interface AdamOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
}

export class Adam extends SlotOptimizer {
  readonly type = 'adam';

  constructor(readonly options: AdamOptions) {
    super();
  }

  /** First and second moment estimates, one pair per parameter (slots "m" and "v"). */
  get m(): Map<string, tf.Variable> {
    return this.slotMap('m');
  }
  get v(): Map<string, tf.Variable> {
    return this.slotMap('v');
  }

  /** θ ← θ − α·m̂/(√v̂ + ε) for every parameter that has a gradient. */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, learningRate: number): void {
    const { beta1, beta2, epsilon } = this.options;
    this.step += 1;
    const t = this.step;
    // bias-correct both moments: m̂ = m/(1−β1^t), v̂ = v/(1−β2^t)
    const c1 = 1 - beta1 ** t;
    const c2 = 1 - beta2 ** t;
    tf.tidy(() => {
      for (const [name, theta] of params) {
        const g = grads.get(name);
        if (g === undefined) continue;
        const m = this.slot('m', name, theta);
        const v = this.slot('v', name, theta);
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1))); // m ← β1·m + (1−β1)·g
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2))); // v ← β2·v + (1−β2)·g²
        const mHat = tf.div(m, c1);
        const vHat = tf.div(v, c2);
        theta.assign(tf.sub(theta, tf.mul(learningRate, tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)))));
      }
    });
  }
}

/**
 * SGD with momentum, as TensorFlow's MomentumOptimizer and PyTorch's SGD write it:
 *   v ← μ·v + g;  θ ← θ − lr·v        (Nesterov: θ ← θ − lr·(g + μ·v))
 * With μ = 0 it is plain SGD and keeps no state.
 */
export class Sgd extends SlotOptimizer {
  readonly type = 'sgd';
  constructor(readonly options: { momentum: number; nesterov: boolean }) {
    super();
  }

  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, learningRate: number): void {
    const { momentum, nesterov } = this.options;
    this.step += 1;
    tf.tidy(() => {
      for (const [name, theta] of params) {
        const g = grads.get(name);
        if (g === undefined) continue;
        if (momentum === 0) {
          theta.assign(tf.sub(theta, tf.mul(learningRate, g)));
          continue;
        }
        const v = this.slot('velocity', name, theta);
        v.assign(tf.add(tf.mul(v, momentum), g)); // v ← μ·v + g
        const direction = nesterov ? tf.add(g, tf.mul(v, momentum)) : v;
        theta.assign(tf.sub(theta, tf.mul(learningRate, direction)));
      }
    });
  }
}

/**
 * RMSProp (Hinton, Coursera lecture 6e), with TensorFlow's optional momentum:
 *   ms ← ρ·ms + (1−ρ)·g²;  mom ← μ·mom + lr·g/(√ms + ε);  θ ← θ − mom
 */
export class RmsProp extends SlotOptimizer {
  readonly type = 'rmsprop';
  constructor(readonly options: { rho: number; momentum: number; epsilon: number }) {
    super();
  }

  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, learningRate: number): void {
    const { rho, momentum, epsilon } = this.options;
    this.step += 1;
    tf.tidy(() => {
      for (const [name, theta] of params) {
        const g = grads.get(name);
        if (g === undefined) continue;
        const ms = this.slot('ms', name, theta);
        ms.assign(tf.add(tf.mul(ms, rho), tf.mul(tf.square(g), 1 - rho)));
        const update = tf.div(tf.mul(learningRate, g), tf.add(tf.sqrt(ms), epsilon));
        if (momentum === 0) {
          theta.assign(tf.sub(theta, update));
          continue;
        }
        const mom = this.slot('mom', name, theta);
        mom.assign(tf.add(tf.mul(mom, momentum), update));
        theta.assign(tf.sub(theta, mom));
      }
    });
  }
}

/** The tensor rule a config names. */
export function makeTensorOptimizer(config: OptimizerConfig): Optimizer {
  switch (config.type) {
    case 'adam':
      return new Adam({ beta1: config.beta1, beta2: config.beta2, epsilon: config.epsilon });
    case 'sgd':
      return new Sgd({ momentum: config.momentum, nesterov: config.nesterov });
    case 'rmsprop':
      return new RmsProp({ rho: config.rho, momentum: config.momentum, epsilon: config.epsilon });
  }
}
