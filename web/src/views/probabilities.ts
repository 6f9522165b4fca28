/** The prediction: the winning digit, and one bar per class (plus the server's answer when comparing). */
import type { Prediction } from '../../../src/serve/schema.ts';
import { el } from './paint.ts';

export class ProbabilityView {
  private readonly rows: { row: HTMLElement; label: HTMLElement; bar: HTMLElement; server: HTMLElement; value: HTMLElement }[] = [];
  private classNames: string[] | null = null;

  constructor(
    private readonly container: HTMLElement,
    private readonly digit: HTMLElement,
    private readonly text: HTMLElement,
    private readonly serverText: HTMLElement,
    classes = 10,
  ) {
    for (let k = 0; k < classes; k++) {
      const row = el('div', 'bar-row');
      const track = el('div', 'bar-track');
      const bar = el('div', 'bar');
      const server = el('div', 'bar server');
      track.append(bar, server);
      const value = el('span', 'bar-value', '');
      const label = el('span', 'bar-label', String(k));
      row.append(label, track, value);
      container.append(row);
      this.rows.push({ row, label, bar, server, value });
    }
    this.clear();
  }

  /** Class names (CIFAR-10's) instead of numbers, once the data set is known. */
  names(classNames: string[]): void {
    this.classNames = classNames;
    this.container.classList.add('named');
    for (const [k, r] of this.rows.entries()) r.label.textContent = classNames[k] ?? String(k);
  }

  clear(message = 'Draw a digit on the black square.'): void {
    this.container.dataset.class = '';
    this.container.classList.add('empty');
    this.digit.textContent = '?';
    this.text.textContent = message;
    for (const r of this.rows) {
      r.bar.style.width = '0%';
      r.value.textContent = '';
      r.row.classList.remove('winner');
    }
    this.showServer(null);
  }

  update(probabilities: ArrayLike<number>, cls: number, detail: string): void {
    this.container.dataset.class = String(cls);
    this.container.classList.remove('empty');
    this.digit.textContent = this.classNames?.[cls] ?? String(cls);
    this.digit.classList.toggle('named', this.classNames !== null);
    this.text.textContent = `${(probabilities[cls] * 100).toFixed(1)}% sure · ${detail}`;
    this.rows.forEach((r, k) => {
      const p = probabilities[k];
      r.bar.style.width = `${(p * 100).toFixed(2)}%`;
      r.value.textContent = p >= 0.0005 ? `${(p * 100).toFixed(1)}%` : '0%';
      r.row.classList.toggle('winner', k === cls);
    });
  }

  /** The server's answer as thin bars under the page's, and a sentence saying whether they agree. */
  showServer(answer: { prediction: Prediction; agrees: boolean; maxDiff: number; note?: string } | null | string): void {
    const on = answer !== null;
    this.serverText.hidden = !on;
    this.container.classList.toggle('comparing', on && typeof answer !== 'string');
    if (answer === null || typeof answer === 'string') {
      this.serverText.textContent = answer ?? '';
      this.serverText.className = 'server-text';
      for (const r of this.rows) r.server.style.width = '0%';
      return;
    }
    const { prediction: p, agrees, maxDiff, note } = answer;
    this.rows.forEach((r, k) => (r.server.style.width = `${(p.probabilities[k] * 100).toFixed(2)}%`));
    this.serverText.className = `server-text ${agrees ? 'agree' : 'disagree'}`;
    this.serverText.textContent =
      `Server: ${p.class} (${(p.probabilities[p.class] * 100).toFixed(1)}%) in ${p.ms.toFixed(2)} ms · ` +
      (agrees ? `agrees (largest difference ${maxDiff.toExponential(1)})` : 'disagrees') +
      (note ? ` · ${note}` : '');
  }
}
