/** How the CLI shows training: a progress bar on a terminal, one plain line per interval otherwise. */
import cliProgress from 'cli-progress';
import type { HistoryEntry, TrainHooks } from '../train/loop.ts';
import type { Evaluation } from '../eval/metrics.ts';

const pct = (x: number, digits = 1) => `${(x * 100).toFixed(digits)}%`;

/** `iter  1000/10000 | loss 0.2134 | batch acc  93.8% | lr 1.00e-4 |   1,950 img/s` */
export function logLine(e: HistoryEntry, total: number): string {
  const width = String(total).length;
  return [
    `iter ${String(e.iteration).padStart(width)}/${total}`,
    `loss ${e.loss.toFixed(4)}`,
    `batch acc ${pct(e.batchAccuracy).padStart(6)}`,
    `lr ${e.learningRate.toExponential(2)}`,
    `${Math.round(e.imagesPerSecond).toLocaleString('en-US').padStart(6)} img/s`,
  ].join(' | ');
}

/** `iter  1000/10000 | validation acc  93.40% (4670 / 5000)` */
export function validationLine(iteration: number, total: number, e: Evaluation): string {
  const width = String(total).length;
  return `iter ${String(iteration).padStart(width)}/${total} | validation acc ${pct(e.accuracy, 2).padStart(7)} (${e.correct} / ${e.total})`;
}

export interface Reporter {
  hooks: TrainHooks;
  stop(): void;
}

export function reporter(stream: NodeJS.WriteStream = process.stdout): Reporter {
  if (!stream.isTTY) {
    return {
      hooks: {
        onLog: (e, total) => stream.write(`${logLine(e, total)}\n`),
        onValidate: (i, total, ev) => stream.write(`${validationLine(i, total, ev)}\n`),
      },
      stop: () => {},
    };
  }
  const bars = new cliProgress.MultiBar(
    { format: 'training [{bar}] {percentage}% | {value}/{total} | eta {eta_formatted}', hideCursor: true, clearOnComplete: true, stream },
    cliProgress.Presets.shades_classic,
  );
  let bar: cliProgress.SingleBar | undefined;
  return {
    hooks: {
      onStep: (i, total) => {
        bar ??= bars.create(total, 0);
        bar.update(i);
      },
      onLog: (e, total) => bars.log(`${logLine(e, total)}\n`),
      onValidate: (i, total, ev) => bars.log(`${validationLine(i, total, ev)}\n`),
    },
    stop: () => bars.stop(),
  };
}
