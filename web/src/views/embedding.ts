/**
 * What the network learned: the UMAP map of the last hidden layer for 2,000 test images (fitted once per
 * model on the server, src/explain/embedding.ts), coloured by true class, and the current input placed on
 * it live with the fitted map's transform.
 */
import { Projector, type EmbeddingFile } from '../../../src/explain/embedding.ts';
import { el } from './paint.ts';

/** Tableau 10, as embedding.png (src/viz/embedding.ts). */
export const CLASS_COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

export class EmbeddingView {
  private readonly canvas: HTMLCanvasElement;
  private readonly status: HTMLElement;
  private file: EmbeddingFile | null = null;
  private projector: Projector | null = null;
  private background: ImageBitmap | HTMLCanvasElement | null = null;
  private bounds = { x0: 0, y0: 0, span: 1 };
  private readonly legend = el('ul', 'embedding-legend');
  private classNames: string[] | undefined;

  constructor(private readonly container: HTMLElement) {
    this.canvas = el('canvas', 'embedding-canvas');
    this.canvas.id = 'embedding-canvas';
    this.canvas.width = this.canvas.height = 480;
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', 'map of 2,000 test images by what the network’s last hidden layer makes of them');
    this.status = el('p', 'hint', 'Loading the map (the server fits it once per model: this can take a minute)…');
    this.status.setAttribute('aria-live', 'polite');
    container.append(this.canvas, this.status);
    container.dataset.points = '0';
  }

  /** Class names (CIFAR-10's) in the legend, whether the map or the names arrive first. */
  names(classNames: string[]): void {
    this.classNames = classNames;
    for (const [k, li] of [...this.legend.children].entries()) li.textContent = classNames[k] ?? String(k);
  }

  get layer(): string | null {
    return this.file?.layer ?? null;
  }

  show(file: EmbeddingFile, classNames?: string[]): void {
    this.file = file;
    this.projector = new Projector(file);
    const xs = file.points.map((p) => p[0]),
      ys = file.points.map((p) => p[1]);
    const x0 = Math.min(...xs),
      y0 = Math.min(...ys);
    this.bounds = { x0, y0, span: Math.max(Math.max(...xs) - x0, Math.max(...ys) - y0) || 1 };
    const bg = el('canvas');
    bg.width = bg.height = this.canvas.width;
    const ctx = bg.getContext('2d')!;
    for (let i = 0; i < file.count; i++) {
      const [x, y] = this.toCanvas(file.points[i]);
      ctx.fillStyle = CLASS_COLORS[file.labels[i] % CLASS_COLORS.length];
      ctx.globalAlpha = 0.8;
      ctx.beginPath();
      ctx.arc(x, y, 2.4, 0, 2 * Math.PI);
      ctx.fill();
    }
    this.background = bg;
    this.container.dataset.points = String(file.count);
    const legend = this.legend;
    const classes = Math.max(...file.labels) + 1;
    legend.replaceChildren();
    for (let k = 0; k < classes; k++) {
      const li = el('li', '', (classNames ?? this.classNames)?.[k] ?? String(k));
      li.style.setProperty('--swatch', CLASS_COLORS[k % CLASS_COLORS.length]);
      legend.append(li);
    }
    this.container.insertBefore(legend, this.status);
    this.status.textContent = `${file.count.toLocaleString('en-US')} test images, layer ${file.layer} (${file.dims} values each), UMAP seed ${file.params.seed}. Nearby dots look alike to the network. The ringed cross is your input.`;
    this.draw(null);
  }

  private toCanvas([x, y]: [number, number]): [number, number] {
    const pad = 10,
      side = this.canvas.width - 2 * pad;
    return [pad + ((x - this.bounds.x0) / this.bounds.span) * side, pad + ((y - this.bounds.y0) / this.bounds.span) * side];
  }

  /** Places a hidden vector (the current input's) on the map; null hides the marker. */
  update(hidden: Float32Array | null): void {
    if (!this.projector) return;
    if (!hidden) {
      this.draw(null);
      return;
    }
    const p = this.projector.project(hidden);
    this.container.dataset.x = p[0].toFixed(4);
    this.container.dataset.y = p[1].toFixed(4);
    this.draw(p);
  }

  private draw(p: [number, number] | null): void {
    const ctx = this.canvas.getContext('2d')!;
    ctx.fillStyle = getComputedStyle(this.canvas).getPropertyValue('--plot-bg') || '#0b0d12';
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (this.background) ctx.drawImage(this.background, 0, 0);
    if (!p) {
      delete this.container.dataset.x;
      delete this.container.dataset.y;
      return;
    }
    const [x, y] = this.toCanvas(p);
    // a target that shows on every class colour and on both themes: black ring, white ring, black cross
    ctx.lineWidth = 6;
    ctx.strokeStyle = '#000';
    ctx.beginPath();
    ctx.arc(x, y, 11, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.lineWidth = 3;
    ctx.strokeStyle = '#fff';
    ctx.stroke();
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x - 17, y);
    ctx.lineTo(x + 17, y);
    ctx.moveTo(x, y - 17);
    ctx.lineTo(x, y + 17);
    ctx.stroke();
  }

  fail(message: string): void {
    this.status.textContent = message;
  }
}
