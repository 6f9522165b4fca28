import * as tf from '@tensorflow/tfjs';
import { SlotOptimizer } from './optimizer.ts';

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
