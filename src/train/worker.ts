/**
 * A training worker: its own TensorFlow.js instance holding a replica of the weights. For each request
 * it reads the current weights from shared memory, computes the gradient of its slice's mean loss and
 * writes it to its own shared gradient buffer. See parallel.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../backend.ts';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { forward, type Params } from '../model/cnn.ts';
import { computeGradients } from './loop.ts';
import { maskTensors } from './dropout.ts';
import type { StepReply, StepRequest, WorkerInit } from './parallel.ts';
import { paramLayout } from './flat.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const reply = (m: StepReply) => port.postMessage(m);

try {
  await useBackend(init.backend);
  const shared = new Float32Array(init.params);
  const grads = new Float32Array(init.grads);
  const layout = paramLayout(init.net);
  const params: Params = new Map(layout.map(({ name, shape }) => [name, tf.variable(tf.zeros(shape), true)]));
  // On wasm, tensors live in the module's heap: gradients are copied straight from it to shared memory.
  const wasm = tf.getBackend() === 'wasm' ? (tf.backend() as BackendWasm) : undefined;
  const heap = (t: tf.Tensor) => wasm!.typedArrayFromHeap(t as never) as Float32Array;

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

  port.on('message', (req: StepRequest) => {
    try {
      loadWeights();
      const n = req.labels.length;
      if (req.kind === 'predict') {
        const classes = tf.tidy(() => tf.argMax(forward(init.net, params, tf.tensor4d(req.images, [n, init.height, init.width, init.channels])), 1));
        const values = Uint8Array.from(classes.dataSync());
        classes.dispose();
        port.postMessage({ loss: 0, correct: 0, classes: values } satisfies StepReply, [values.buffer]);
        return;
      }
      const [loss, correct] = tf.tidy(() => {
        const x = tf.tensor4d(req.images, [n, init.height, init.width, init.channels]);
        const y = tf.tensor1d(req.labels, 'int32');
        const out = computeGradients(init.net, params, x, y, req.masks && maskTensors(init.net, req.masks, n));
        for (const { name, offset } of layout) {
          const g = out.grads.get(name)!;
          grads.set(wasm ? heap(g) : (g.dataSync() as Float32Array), offset);
        }
        const result = [out.loss.dataSync()[0], out.correct.dataSync()[0]];
        out.correct.dispose(); // kept out of variableGrads' scope, so not freed by this tidy
        return result;
      });
      reply({ loss, correct });
    } catch (err) {
      reply({ loss: NaN, correct: 0, error: (err as Error)?.message ?? String(err) });
    }
  });
  reply({ loss: 0, correct: 0 }); // ready
} catch (err) {
  reply({ loss: NaN, correct: 0, error: (err as Error)?.message ?? String(err) });
}
