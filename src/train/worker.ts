/**
 * A training worker: its own TensorFlow.js instance holding a replica of the weights, and the optimizer
 * state of its shard of them. For a training step it reads the current weights from shared memory,
 * computes the gradient of its slice's mean loss into its shared gradient buffer, waits at the barrier for
 * the other workers, then updates its shard of the shared weights. See parallel.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '../backend.ts';
import type { Params } from '../model/cnn.ts';
import { classify, probabilities } from '../eval/classify.ts';
import { computeGradients } from './step.ts';
import { maskTensors } from './dropout.ts';
import { prepareSlice } from './prepare.ts';
import { ABORT, ARRIVED, FAILED, SHARD, shardOf, type StepReply, type StepRequest, type WorkerInit } from './parallel.ts';
import { SimdAdam, combine, makeFlatOptimizer, type FlatOptimizer } from './flat.ts';
import { paramLayout } from './layout.ts';
import { serveChannel } from './serving.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const reply = (m: StepReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
const message = (err: unknown) => (err as Error)?.message ?? String(err);

try {
  await useBackend(init.backend);
  const shared = new Float32Array(init.params);
  const grads = init.grads.map((b) => new Float32Array(b));
  const control = new Int32Array(init.control);
  const layout = paramLayout(init.net);
  const params: Params = new Map(layout.map(({ name, shape }) => [name, tf.variable(tf.zeros(shape), true)]));
  // On wasm, tensors live in the module's heap: gradients are copied straight from it to shared memory.
  const wasm = tf.getBackend() === 'wasm' ? (tf.backend() as BackendWasm) : undefined;
  const heap = (t: tf.Tensor) => wasm!.typedArrayFromHeap(t as never) as Float32Array;

  // This worker's shard of the flat weights, and ordinary arrays to work on it (V8 runs loops over
  // SharedArrayBuffer views several times slower, so shared memory is only copied in and out).
  const [lo, hi] = shardOf(init.index, init.count, shared.length);
  const theta = new Float32Array(hi - lo);
  const summed = new Float32Array(hi - lo);
  const parts = grads.map(() => new Float32Array(hi - lo));
  let optimizer: FlatOptimizer | undefined;
  // The optimizer sees the shard as one parameter, so its state is an ordinary OptimizerState.
  const shardLayout = [{ name: SHARD, shape: [hi - lo], offset: 0, size: hi - lo }];

  /**
   * This step's weights from shared memory into the replica. Always new tensors, never writes in place:
   * the wasm backend caches XNNPACK operators (with the weights packed inside) by the weight tensor's id.
   */
  const loadWeights = () => {
    for (const { name, shape, offset, size } of layout) {
      // The wasm backend copies into its heap at once; the cpu backend would keep a view on memory the
      // main thread rewrites, so it gets a copy.
      const values = tf.tensor(wasm ? shared.subarray(offset, offset + size) : shared.slice(offset, offset + size), shape);
      params.get(name)!.assign(values);
      values.dispose();
    }
  };

  /** The slice's gradients into this worker's shared buffer; its loss and correct predictions. */
  const gradients = (images: Float32Array, labels: Uint8Array, masks: Extract<StepRequest, { kind: 'train' }>['masks']): [number, number] => {
    loadWeights();
    const n = labels.length;
    const out = grads[init.index];
    return tf.tidy(() => {
      const x = tf.tensor4d(images, [n, init.height, init.width, init.channels]);
      const y = tf.tensor1d(labels, 'int32');
      const g = computeGradients(init.net, params, x, y, masks && maskTensors(init.net, masks, n));
      for (const { name, offset } of layout) {
        const t = g.grads.get(name)!;
        out.set(wasm ? heap(t) : (t.dataSync() as Float32Array), offset);
      }
      const result: [number, number] = [g.loss.dataSync()[0], g.correct.dataSync()[0]];
      g.correct.dispose(); // kept out of variableGrads' scope, so not freed by this tidy
      return result;
    });
  };

  /** Waits until every worker has arrived for `generation`. False if the pool was aborted meanwhile. */
  const barrier = (generation: number): boolean => {
    const target = generation * init.count;
    if (Atomics.add(control, ARRIVED, 1) + 1 >= target) {
      Atomics.notify(control, ARRIVED);
      return true;
    }
    for (;;) {
      const seen = Atomics.load(control, ARRIVED);
      if (seen >= target) return true;
      if (Atomics.load(control, ABORT) !== 0) return false;
      Atomics.wait(control, ARRIVED, seen, 1000);
    }
  };

  /** Σ_i w_i·g_i over this shard, in worker order, then the update rule on the shard of the shared weights. */
  const update = (sliceWeights: number[], learningRate: number) => {
    const used = sliceWeights.flatMap((w, i) => (w > 0 ? [i] : []));
    if (optimizer instanceof SimdAdam) {
      // Sums the gradients inside its own pass, and copies the shard in and out of its own memory itself: no
      // JavaScript loop runs over the shared view, so no local copy (0.22 instead of 0.27 ms per shard of
      // the seed network).
      optimizer.applyWeighted(
        shared.subarray(lo, hi),
        used.map((i) => grads[i].subarray(lo, hi)),
        used.map((i) => sliceWeights[i]),
        learningRate,
      );
      return;
    }
    // The JavaScript rules loop over ordinary arrays (V8 runs loops over shared views several times slower).
    theta.set(shared.subarray(lo, hi));
    used.forEach((i) => parts[i].set(grads[i].subarray(lo, hi)));
    combine(
      summed,
      used.map((i) => parts[i]),
      used.map((i) => sliceWeights[i]),
    );
    optimizer!.apply(theta, summed, learningRate);
    shared.set(theta, lo);
  };

  port.on('message', (req: StepRequest) => {
    try {
      switch (req.kind) {
        case 'train': {
          let result: [number, number] = [0, 0];
          let failure: string | undefined;
          try {
            if (optimizer === undefined) throw new Error('no optimizer set');
            const n = req.labels.length;
            const masks = req.random ? prepareSlice(init.net, req.images, n, req.first, req.random) : req.masks;
            if (n > 0) result = gradients(req.images, req.labels, masks);
          } catch (err) {
            failure = message(err);
            Atomics.store(control, FAILED, req.generation); // nobody updates with a missing gradient
          }
          // Arrive even after a failure, so that the others are not left waiting.
          if (!barrier(req.generation)) failure ??= 'stopped: another training worker is gone';
          if (failure === undefined && Atomics.load(control, FAILED) === req.generation) failure = 'stopped: another training worker failed';
          if (failure !== undefined) return reply({ loss: NaN, correct: 0, error: failure });
          update(req.sliceWeights, req.learningRate);
          return reply({ loss: result[0], correct: result[1] });
        }
        case 'predict': {
          loadWeights();
          const values = classify(init.net, params, req.images, req.count);
          return reply({ loss: 0, correct: 0, classes: values }, [values.buffer]);
        }
        case 'serve': {
          loadWeights(); // once: the served weights never change
          serveChannel(req.channel, (images, count) => probabilities(init.net, params, images, count));
          return reply({ loss: 0, correct: 0 });
        }
        case 'optimizer': {
          optimizer = makeFlatOptimizer(req.config, shardLayout);
          if (req.state) optimizer.importState(req.state);
          return reply({ loss: 0, correct: 0 });
        }
        case 'memory': {
          const heapBytes = wasm ? (wasm.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.byteLength : 0;
          return reply({ loss: 0, correct: 0, memory: { tensors: tf.memory().numTensors, dataIds: tf.backend().numDataIds(), heapBytes } });
        }
        case 'state': {
          if (optimizer === undefined) throw new Error('no optimizer set');
          return reply({ loss: 0, correct: 0, state: optimizer.exportState() });
        }
      }
    } catch (err) {
      reply({ loss: NaN, correct: 0, error: message(err) });
    }
  });
  reply({ loss: 0, correct: 0 }); // ready
} catch (err) {
  reply({ loss: NaN, correct: 0, error: message(err) });
}
