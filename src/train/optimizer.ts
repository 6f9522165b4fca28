/**
 * The update rules a config can choose (`train.optimizer.type`): Adam (adam.ts), SGD with momentum
 * (sgd.ts) and RMSProp (rmsprop.ts), behind one interface so the loop, the worker pool and checkpoints treat them alike. Every
 * optimizer keeps its state in named slots (Adam: m, v; SGD: velocity; RMSProp: ms, mom), one tensor per
 * parameter, and exports all of it for checkpoints so a resumed run is bit-identical.
 */
import * as tf from '@tensorflow/tfjs';
import type { OptimizerConfig, OptimizerType, ScheduleConfig } from '../model/config.ts';

/** Everything an optimizer needs to continue exactly: its step count and every slot, as plain arrays. */
export interface OptimizerState {
  type: OptimizerType;
  /** Updates applied so far. */
  step: number;
  /** slots[slot][parameter]: e.g. slots.m['conv1/kernel'] for Adam. */
  slots: Record<string, Record<string, Float32Array>>;
}

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

/** Learning rate at iteration `i` (0-based) of `total` under `schedule`, starting from `start`. */
export function scheduledRate(schedule: ScheduleConfig, start: number, i: number, total: number): number {
  switch (schedule.type) {
    case 'constant':
      return start;
    case 'cosine': {
      if (total <= 1) return start;
      const end = schedule.finalLearningRate;
      return end + 0.5 * (start - end) * (1 + Math.cos((Math.PI * i) / (total - 1)));
    }
    case 'step':
      return start * schedule.factor ** Math.floor(i / schedule.every);
  }
}
