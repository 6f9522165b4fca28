/**
 * Adam (Kingma & Ba, 2015, Algorithm 1), written out so it can be read, checked against the paper and
 * checkpointed. With the lesson's TensorFlow 1.x defaults: β1 0.9, β2 0.999, ε 1e-8.
 */
import * as tf from '@tensorflow/tfjs';
import { SlotOptimizer } from './optimizer.ts';

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
