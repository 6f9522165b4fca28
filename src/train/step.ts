/**
 * One training step, written once: the gradient function (forward, loss, backward) that both engines run
 * (in this thread, and on every worker for its slice of the batch), and the in-thread step that applies an
 * optimizer's update to it. The page trains with the same step (web/src/training.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { NetworkConfig, OptimizerConfig } from '../model/config.ts';
import { forward, loss as lossFn, type DropoutMasks, type Params } from '../model/cnn.ts';
import { Adam } from './adam.ts';
import { RmsProp } from './rmsprop.ts';
import { Sgd } from './sgd.ts';
import type { Optimizer } from './optimizer.ts';
import { maskTensors, type MaskArrays } from './dropout.ts';

/** One step's input: B images (NHWC, flat), their labels and, when training with dropout, their masks. */
export interface StepBatch {
  images: Float32Array;
  labels: Uint8Array;
  masks?: MaskArrays;
}

/** A step's outcome: the batch's mean loss and how many of its images were classified correctly. */
export interface StepResult {
  loss: number;
  correct: number;
}

/** The update rule a config names, on tensors. */
export function makeOptimizer(config: OptimizerConfig): Optimizer {
  switch (config.type) {
    case 'adam':
      return new Adam({ beta1: config.beta1, beta2: config.beta2, epsilon: config.epsilon });
    case 'sgd':
      return new Sgd({ momentum: config.momentum, nesterov: config.nesterov });
    case 'rmsprop':
      return new RmsProp({ rho: config.rho, momentum: config.momentum, epsilon: config.epsilon });
  }
}

/**
 * One optimisation step's gradients: returns the loss, the number of correct predictions in the batch,
 * and dLoss/dParam for every parameter. The caller owns (and must dispose) the gradient tensors.
 * `masks` (training with dropout) are the batch's dropout masks.
 */
export function computeGradients(
  net: NetworkConfig,
  params: Params,
  x: tf.Tensor4D,
  labels: tf.Tensor1D,
  masks?: DropoutMasks,
): { loss: tf.Scalar; correct: tf.Scalar; grads: Map<string, tf.Tensor> } {
  let correct: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const logits = forward(net, params, x, undefined, masks); // [B,classes]
    correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32'))) as tf.Scalar;
    return lossFn(logits, labels);
  }, [...params.values()]);
  const byName = new Map<string, tf.Tensor>();
  for (const [name, v] of params) byName.set(name, grads[v.name]);
  return { loss: value as tf.Scalar, correct: correct!, grads: byName };
}

/** One step in this thread: the gradients of the whole batch, then the optimizer's update of `params`. */
export async function stepInThread(net: NetworkConfig, params: Params, optimizer: Optimizer, batch: StepBatch, learningRate: number): Promise<StepResult> {
  const n = batch.labels.length;
  const { height, width, channels } = net.input;
  const x = tf.tensor4d(batch.images, [n, height, width, channels]); // [B,H,W,C]
  const [loss, correct] = tf.tidy(() => {
    const y = tf.tensor1d(batch.labels, 'int32'); // [B]
    const g = computeGradients(net, params, x, y, batch.masks && maskTensors(net, batch.masks, n));
    optimizer.apply(params, g.grads, learningRate);
    return [g.loss, g.correct];
  });
  x.dispose();
  try {
    // Asynchronous reads, so a page stays responsive while a WebGL backend finishes the step.
    return { loss: (await loss.data())[0], correct: (await correct.data())[0] };
  } finally {
    tf.dispose([loss, correct]);
  }
}
