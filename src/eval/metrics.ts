/** Accuracy, confusion matrix and per-class precision/recall from predicted and true labels. */

export interface Evaluation {
  correct: number;
  total: number;
  /** correct / total, in 0..1. */
  accuracy: number;
  /** confusion[trueClass][predictedClass] = count. */
  confusion: number[][];
  /** The predicted class of every example, in order. */
  predictions: Uint8Array;
}

export function evaluatePredictions(predictions: Uint8Array, labels: Uint8Array, classes: number): Evaluation {
  if (predictions.length !== labels.length) throw new Error('predictions and labels differ in length');
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    confusion[labels[i]][predictions[i]] += 1;
    if (labels[i] === predictions[i]) correct += 1;
  }
  const total = labels.length;
  return { correct, total, accuracy: total === 0 ? 0 : correct / total, confusion, predictions };
}

export interface ClassReport {
  cls: number;
  precision: number;
  recall: number;
  support: number;
}

export function perClass(confusion: number[][]): ClassReport[] {
  return confusion.map((row, cls) => {
    const tp = row[cls];
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, r) => a + r[cls], 0);
    return { cls, precision: predicted === 0 ? 0 : tp / predicted, recall: support === 0 ? 0 : tp / support, support };
  });
}

/** `Accuracy on test set: 98.80% (9880 / 10000)`, the lesson's line. */
export function accuracyLine(split: string, e: Pick<Evaluation, 'accuracy' | 'correct' | 'total'>): string {
  return `Accuracy on ${split} set: ${(e.accuracy * 100).toFixed(2)}% (${e.correct} / ${e.total})`;
}

/** The confusion matrix as a text table, rows = true class, columns = predicted class. */
export function confusionTable(confusion: number[][]): string {
  const k = confusion.length;
  const width = Math.max(5, ...confusion.flat().map((n) => String(n).length + 1));
  const cell = (s: string | number) => String(s).padStart(width);
  const lines = [`${'true\\pred'.padEnd(9)}${Array.from({ length: k }, (_, j) => cell(j)).join('')}`];
  confusion.forEach((row, i) => lines.push(`${String(i).padEnd(9)}${row.map(cell).join('')}`));
  return lines.join('\n');
}
