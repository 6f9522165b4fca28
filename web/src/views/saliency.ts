/**
 * Why this answer: for the current input, a heatmap of how much each pixel pushed a class's score, for
 * the top class and for a class you pick. Gradient × input is signed (orange pushed towards the class,
 * blue away from it); Grad-CAM is ≥ 0 (where the last conv block saw evidence). The math is the
 * library's (src/explain/saliency.ts), run on the page's own network.
 */
import { SALIENCY_LABELS, saliency, type SaliencyMap, type SaliencyMethod } from '../../../src/explain/saliency.ts';
import type { Network } from '../network.ts';
import { el, heat, signed } from './paint.ts';

type Rgb = [number, number, number];

/** Paints a saliency map over a dimmed copy of the input (grayscale, or the colours of an RGB input). */
export function paintSaliency(canvas: HTMLCanvasElement, map: SaliencyMap, input: Float32Array, channels: number): number {
  const { height: h, width: w, values } = map;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d')!;
  const image = ctx.createImageData(w, h);
  let peak = 0;
  for (const v of values) peak = Math.max(peak, Math.abs(v));
  const s = peak > 0 ? 1 / peak : 0;
  let checksum = 0;
  for (let i = 0; i < h * w; i++) {
    const t = values[i] * s;
    checksum += values[i] * ((i % 7) + 1);
    const c: Rgb = map.method === 'grad-cam' ? heat(t) : signed(t);
    const strength = Math.min(1, Math.abs(t) * 1.4);
    for (let k = 0; k < 3; k++) {
      const base = 255 * 0.35 * (channels === 1 ? input[i] : input[i * channels + k]);
      image.data[4 * i + k] = base * (1 - strength) + c[k] * strength;
    }
    image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return checksum;
}

export class SaliencyView {
  private readonly method: HTMLSelectElement;
  private readonly pick: HTMLSelectElement;
  private readonly panels: { canvas: HTMLCanvasElement; caption: HTMLElement }[] = [];
  private last: { network: Network; pixels: Float32Array; top: number } | null = null;

  constructor(
    private readonly container: HTMLElement,
    classes: number,
    classNames?: string[],
  ) {
    const controls = el('div', 'row saliency-controls');
    const methodLabel = el('label', '', 'method ');
    this.method = el('select');
    this.method.id = 'saliency-method';
    for (const [value, label] of Object.entries(SALIENCY_LABELS)) this.method.append(new Option(label, value));
    methodLabel.append(this.method);
    const pickLabel = el('label', '', 'compare with class ');
    this.pick = el('select');
    this.pick.id = 'saliency-class';
    for (let k = 0; k < classes; k++) this.pick.append(new Option(classNames?.[k] ?? String(k), String(k)));
    pickLabel.append(this.pick);
    controls.append(methodLabel, pickLabel);
    const figures = el('div', 'saliency-maps');
    for (const role of ['top', 'chosen']) {
      const fig = el('figure', 'saliency-map');
      const canvas = el('canvas', 'tile saliency-canvas');
      canvas.id = `saliency-${role}`;
      canvas.setAttribute('role', 'img');
      const caption = el('figcaption', '', '');
      fig.append(canvas, caption);
      figures.append(fig);
      this.panels.push({ canvas, caption });
    }
    const legend = el('p', 'hint saliency-legend', '');
    container.append(controls, figures, legend);
    const redraw = () => {
      legend.textContent = this.legend();
      if (this.last) this.update(this.last.network, this.last.pixels, this.last.top);
    };
    this.method.addEventListener('change', redraw);
    this.pick.addEventListener('change', redraw);
    legend.textContent = this.legend();
    this.clear();
  }

  private legend(): string {
    return this.method.value === 'grad-cam'
      ? "Grad-CAM: the last conv block's maps weighted by how much each raised the class score, ReLU, upsampled from its coarse grid. Bright = evidence for the class."
      : "Gradient × input: each pixel's ink times how fast the class score grows with it. Orange pushed towards the class, blue away from it.";
  }

  /** Class names (CIFAR-10's) in the class picker, once the data set is known. */
  names(classNames: string[]): void {
    for (const [k, o] of [...this.pick.options].entries()) o.text = classNames[k] ?? String(k);
  }

  get chosenClass(): number {
    return Number(this.pick.value);
  }

  clear(): void {
    this.last = null;
    for (const p of this.panels) {
      const ctx = p.canvas.getContext('2d')!;
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, p.canvas.width, p.canvas.height);
      p.canvas.dataset.class = '';
      p.canvas.dataset.checksum = '0';
      p.caption.textContent = '—';
    }
  }

  update(network: Network, pixels: Float32Array, top: number): void {
    this.last = { network, pixels, top };
    const method = this.method.value as SaliencyMethod;
    const channels = network.net.input.channels;
    [top, this.chosenClass].forEach((cls, i) => {
      const map = saliency(method, network.net, network.params, pixels, cls);
      const panel = this.panels[i];
      panel.canvas.dataset.checksum = paintSaliency(panel.canvas, map, pixels, channels).toFixed(6);
      panel.canvas.dataset.class = String(cls);
      panel.canvas.dataset.method = method;
      const what = i === 0 ? `top class ${this.pick.options[cls]?.text ?? cls}` : `class ${this.pick.options[cls]?.text ?? cls}`;
      panel.caption.textContent = `${what} · ${SALIENCY_LABELS[method]}`;
      panel.canvas.setAttribute('aria-label', `${SALIENCY_LABELS[method]} heatmap for ${what}`);
    });
  }
}
