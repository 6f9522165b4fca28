/**
 * Adam (Kingma & Ba, 2015, Algorithm 1), written out so it can be read, checked against the paper and
 * checkpointed. With the lesson's TensorFlow 1.x defaults: β1 0.9, β2 0.999, ε 1e-8.
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
}

export interface AdamState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export class Adam {
  /** Number of updates applied so far (t in the paper). */
  step = 0;
  /** First and second moment estimates, one pair per parameter. */
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(readonly options: AdamOptions) {}

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
        const m = this.moment(this.m, name, theta);
        const v = this.moment(this.v, name, theta);
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1))); // m ← β1·m + (1−β1)·g
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2))); // v ← β2·v + (1−β2)·g²
        const mHat = tf.div(m, c1);
        const vHat = tf.div(v, c2);
        theta.assign(tf.sub(theta, tf.mul(learningRate, tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)))));
      }
    });
  }

  private moment(store: Map<string, tf.Variable>, name: string, like: tf.Tensor): tf.Variable {
    let s = store.get(name);
    if (s === undefined) {
      const zeros = tf.zerosLike(like);
      s = tf.variable(zeros, false);
      zeros.dispose();
      store.set(name, s);
    }
    return s;
  }

  /** The optimiser state (step and both moments as plain arrays), for checkpoints. */
  exportState(): AdamState {
    const read = (store: Map<string, tf.Variable>) =>
      Object.fromEntries([...store].map(([name, t]) => [name, t.dataSync() as Float32Array]));
    return { step: this.step, m: read(this.m), v: read(this.v) };
  }

  /** Continues from a saved state: the next `apply` is step `state.step + 1`. */
  importState(state: AdamState, params: Map<string, tf.Variable>): void {
    this.dispose();
    this.step = state.step;
    for (const [store, saved] of [
      [this.m, state.m],
      [this.v, state.v],
    ] as const) {
      for (const [name, values] of Object.entries(saved)) {
        const like = params.get(name);
        if (like === undefined || like.size !== values.length) throw new Error(`Adam state for ${name} does not fit the network`);
        const initial = tf.tensor(values, like.shape);
        store.set(name, tf.variable(initial, false));
        initial.dispose();
      }
    }
  }

  dispose(): void {
    for (const s of [...this.m.values(), ...this.v.values()]) s.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** Learning rate at iteration `i` (0-based) of `total`: constant, or cosine decay from `start` to `end`. */
export function learningRateAt(
  schedule: 'constant' | 'cosine',
  start: number,
  end: number,
  i: number,
  total: number,
): number {
  if (schedule === 'constant' || total <= 1) return start;
  return end + 0.5 * (start - end) * (1 + Math.cos((Math.PI * i) / (total - 1)));
}
