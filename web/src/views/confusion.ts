/**
 * Where it goes wrong: the served model's confusion matrix on its test set as a grid of buttons. A
 * mistake cell opens its test images, each with gradient × input saliency for the true and for the
 * predicted class; choosing an image loads it into the network view.
 */
import type { ErrorCell, TestImage, TestRun } from '../../../src/explain/api.ts';
import { gradientTimesInput } from '../../../src/explain/saliency.ts';
import type { Network } from '../network.ts';
import { el, gray, paintGrid, paintRgb } from './paint.ts';
import { paintSaliency } from './saliency.ts';

export interface PickedImage {
  pixels: Float32Array;
  image: TestImage;
}

export class ConfusionView {
  private readonly gallery: HTMLElement;
  private readonly status: HTMLElement;
  private run: TestRun | null = null;

  constructor(
    private readonly container: HTMLElement,
    private readonly fetchErrors: (t: number, p: number) => Promise<ErrorCell>,
    private readonly decode: (base64: string) => Float32Array,
    private readonly network: () => Network,
    private readonly onPick: (picked: PickedImage) => void,
  ) {
    this.status = el('p', 'hint', 'Loading the test run…');
    this.status.setAttribute('aria-live', 'polite');
    this.gallery = el('div', 'error-gallery');
    this.gallery.id = 'error-gallery';
    container.append(this.status, this.gallery);
  }

  name(k: number): string {
    return this.run?.classNames?.[k] ?? String(k);
  }

  show(run: TestRun): void {
    this.run = run;
    const k = run.classes;
    const max = Math.max(1, ...run.confusion.flatMap((row, i) => row.filter((_, j) => j !== i)));
    const table = el('table', 'confusion');
    table.id = 'confusion';
    const caption = el('caption', '', 'rows: true class · columns: predicted class');
    const head = el('tr');
    head.append(el('th', 'corner', 'true \\ pred'));
    for (let j = 0; j < k; j++) head.append(Object.assign(el('th', '', this.name(j)), { scope: 'col' }));
    table.append(caption, head);
    run.confusion.forEach((row, i) => {
      const tr = el('tr');
      tr.append(Object.assign(el('th', '', this.name(i)), { scope: 'row' }));
      row.forEach((count, j) => {
        const td = el('td');
        if (i === j || count === 0) {
          td.textContent = String(count);
          td.className = i === j ? 'diag' : 'zero';
        } else {
          const b = el('button', 'cell', String(count));
          b.type = 'button';
          b.dataset.true = String(i);
          b.dataset.predicted = String(j);
          b.setAttribute('aria-label', `${count} test images of ${this.name(i)} taken for ${this.name(j)}`);
          // mistakes on a √ scale of the largest mistake: a few errors are still visible
          b.style.setProperty('--level', String(Math.sqrt(count / max)));
          b.addEventListener('click', () => void this.open(i, j));
          td.append(b);
        }
        tr.append(td);
      });
      table.append(tr);
    });
    const scroll = el('div', 'confusion-scroll'); // a phone scrolls the grid, not the page
    scroll.append(table);
    this.container.insertBefore(scroll, this.status);
    const agree =
      run.metricsConfusion === null
        ? 'metrics.json has no confusion matrix'
        : JSON.stringify(run.metricsConfusion) === JSON.stringify(run.confusion)
          ? "the same as the training run's metrics.json"
          : 'differs from metrics.json (other data or backend)';
    this.status.textContent = `${run.correct.toLocaleString('en-US')} of ${run.total.toLocaleString('en-US')} test images right (${((100 * run.correct) / run.total).toFixed(2)}%), ${agree}. Choose a number off the diagonal to see those mistakes.`;
  }

  async open(t: number, p: number): Promise<void> {
    this.gallery.dataset.true = String(t);
    this.gallery.dataset.predicted = String(p);
    this.gallery.dataset.state = 'loading';
    this.gallery.replaceChildren(el('p', 'hint', `Loading the ${this.name(t)} → ${this.name(p)} mistakes…`));
    try {
      const cell = await this.fetchErrors(t, p);
      if (this.gallery.dataset.true !== String(t) || this.gallery.dataset.predicted !== String(p)) return; // another cell was chosen meanwhile
      const net = this.network();
      const { height, width, channels } = net.net.input;
      const title = el(
        'h3',
        '',
        `${cell.count} test image${cell.count === 1 ? '' : 's'} of ${this.name(t)} taken for ${this.name(p)}${cell.images.length < cell.count ? ` (first ${cell.images.length})` : ''}`,
      );
      const legend = el(
        'p',
        'hint',
        'Each: the image, then gradient × input for the true class and for the predicted one (orange: pushed towards that class). Choose one to load it into the network view.',
      );
      const list = el('div', 'error-list');
      for (const image of cell.images) {
        const pixels = this.decode(image.pixels);
        const b = el('button', 'error-item');
        b.type = 'button';
        b.dataset.index = String(image.index);
        b.dataset.label = String(image.label);
        b.dataset.predicted = String(image.predicted);
        b.setAttribute(
          'aria-label',
          `test image ${image.index}: true ${this.name(image.label)}, predicted ${this.name(image.predicted)} (${(100 * image.probabilities[image.predicted]).toFixed(0)}%); load it`,
        );
        const original = el('canvas', 'tile');
        paintGrid(original, height, width, (r, c) => pixels[(r * width + c) * channels], gray, 1);
        if (channels === 3) paintRgb(original, pixels, height, width);
        const forTrue = el('canvas', 'tile');
        const forPred = el('canvas', 'tile');
        forTrue.dataset.checksum = paintSaliency(forTrue, gradientTimesInput(net.net, net.params, pixels, image.label), pixels, channels).toFixed(6);
        forPred.dataset.checksum = paintSaliency(forPred, gradientTimesInput(net.net, net.params, pixels, image.predicted), pixels, channels).toFixed(6);
        const maps = el('span', 'error-maps');
        maps.append(original, forTrue, forPred);
        b.append(
          maps,
          el(
            'span',
            'error-caption',
            `#${image.index} · ${this.name(image.label)}→${this.name(image.predicted)} ${(100 * image.probabilities[image.predicted]).toFixed(0)}%`,
          ),
        );
        b.addEventListener('click', () => this.onPick({ pixels, image }));
        list.append(b);
      }
      this.gallery.replaceChildren(title, legend, list);
      this.gallery.dataset.count = String(cell.count);
      this.gallery.dataset.state = 'ready';
    } catch (err) {
      this.gallery.replaceChildren(el('p', 'hint', `Could not load them: ${(err as Error).message}`));
      this.gallery.dataset.state = 'error';
    }
  }

  fail(message: string): void {
    this.status.textContent = message;
  }
}
