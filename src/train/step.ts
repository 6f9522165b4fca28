/**
 * One training step, written once: the gradient function (forward, loss, backward) that both engines run
 * (in this thread, and on every worker for its slice of the batch), and the in-thread step that applies the
 * update to it. The update is the flat one (flat.ts) in both places: the gradients are read out into one
 * Float32Array, the rule updates a flat copy of the weights, and new weight tensors are made from it. The
 * page trains with the same step (web/src/training.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { NetworkConfig, OptimizerConfig } from '../model/config.ts';
import { forward, loss as lossFn, type DropoutMasks, type Params } from '../model/cnn.ts';
import type { OptimizerState } from './optimizer.ts';
import { makeFlatOptimizer, type FlatOptimizer } from './flat.ts';
import { flattenParams, paramLayout, type ParamSlice } from './layout.ts';
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

/**
 * Training `params` in this thread: the forward and backward pass on their tensors, the update on a flat
 * copy of them with the same update rule the workers run (makeFlatOptimizer: Adam in wasm SIMD, SGD and
 * RMSProp as loops), so a step here and a step on one worker are the same arithmetic.
 */
export class InThreadStep {
  private readonly layout: ParamSlice[];
  /** The weights, flat (weightSpecs order): what the update rule works on; `params` is made from it. */
  private readonly theta: Float32Array;
  private readonly gradient: Float32Array;
  private readonly optimizer: FlatOptimizer;

  /** Starts `config`'s update rule on `params`, fresh or continuing from a checkpoint's `state`. */
  constructor(
    private readonly net: NetworkConfig,
    private readonly params: Params,
    config: OptimizerConfig,
    state?: OptimizerState,
  ) {
    this.layout = paramLayout(net);
    this.theta = flattenParams(net, params);
    this.gradient = new Float32Array(this.theta.length);
    this.optimizer = makeFlatOptimizer(config, this.layout);
    if (state !== undefined) this.optimizer.importState(state);
  }

  /** One step on the whole batch at `learningRate`: gradients, update, new weight tensors in `params`. */
  async step(batch: StepBatch, learningRate: number): Promise<StepResult> {
    const { net, params, layout } = this;
    const n = batch.labels.length;
    const { height, width, channels } = net.input;
    // --- forward, backward
    const x = tf.tensor4d(batch.images, [n, height, width, channels]); // [B,H,W,C]
    const { loss, correct, grads } = tf.tidy(() => {
      const y = tf.tensor1d(batch.labels, 'int32'); // [B]
      const g = computeGradients(net, params, x, y, batch.masks && maskTensors(net, batch.masks, n));
      return { loss: g.loss, correct: g.correct, grads: layout.map((p) => g.grads.get(p.name)!) };
    });
    x.dispose();
    let read: [number, number];
    try {
      // Asynchronous reads, so a page stays responsive while a WebGL backend finishes the step.
      const [values, lossValue, correctValue] = await Promise.all([Promise.all(grads.map((t) => t.data())), loss.data(), correct.data()]);
      for (const [i, { offset }] of layout.entries()) this.gradient.set(values[i] as Float32Array, offset);
      read = [lossValue[0], correctValue[0]];
    } finally {
      // Freed before the new weights are made, so these take the same places in the wasm heap every step
      // (made while the gradients still held theirs, the heap fragments and grows).
      tf.dispose([loss, correct, ...grads]);
    }

    // --- update, flat
    this.optimizer.apply(this.theta, this.gradient, learningRate);

    // --- new weight tensors. Never written into the old ones' memory: the wasm backend caches XNNPACK
    // operators (the weights packed inside) by tensor id. Copies, as the cpu backend keeps the array it gets.
    for (const { name, shape, offset, size } of layout) {
      const values = tf.tensor(this.theta.slice(offset, offset + size), shape);
      params.get(name)!.assign(values);
      values.dispose();
    }
    return { loss: read[0], correct: read[1] };
  }

  /** The update rule's whole state, as checkpoints store it. */
  optimizerState(): OptimizerState {
    return this.optimizer.exportState();
  }
}
