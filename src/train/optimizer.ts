/**
 * What every update rule shares: the shape of its state, which checkpoints save, and the learning-rate
 * schedules. The rules a config can choose (`train.optimizer.type`: Adam, SGD with momentum, RMSProp) are in
 * flat.ts, over a flat vector of the weights; both engines and the page run them.
 */
import type { OptimizerType, ScheduleConfig } from '../model/config.ts';

/**
 * Everything an update rule needs to continue exactly: its step count and every slot (Adam: m, v; SGD:
 * velocity; RMSProp: ms, mom), one array per parameter, so a resumed run is bit-identical. The same shape
 * whichever engine wrote it: the workers' shards are put together per parameter (parallel.ts).
 */
export interface OptimizerState {
  type: OptimizerType;
  /** Updates applied so far. */
  step: number;
  /** slots[slot][parameter]: e.g. slots.m['conv1/kernel'] for Adam. */
  slots: Record<string, Record<string, Float32Array>>;
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
