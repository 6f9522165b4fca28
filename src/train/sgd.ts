import * as tf from '@tensorflow/tfjs';
import { SlotOptimizer } from './optimizer.ts';

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
