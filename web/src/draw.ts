/**
 * The drawing pad: white ink on a black square, with mouse, pen or finger (pointer events), turned into
 * the network's 28x28 input by the same preprocessing the server uses (src/predict/preprocess.ts).
 */
import { grayFromRgba } from '../../src/predict/image.ts';
import { toMnist } from '../../src/predict/pipeline.ts';

export class DrawingPad {
  private readonly ctx: CanvasRenderingContext2D;
  private last: { x: number; y: number } | null = null;
  private pending = false;
  private inked = false;

  /** `onChange` runs at most once per animation frame while drawing, and after `clear()`. */
  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly onChange: () => void,
  ) {
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('this browser has no 2D canvas');
    this.ctx = ctx;
    this.clear();
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture'] as const) {
      canvas.addEventListener(type, () => (this.last = null));
    }
  }

  clear(): void {
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.inked = false;
    this.changed();
  }

  /** True once something has been drawn since the last clear. */
  get hasInk(): boolean {
    return this.inked;
  }

  /** The drawing as the network sees it: 784 values in [0,1], or null when there is no ink. */
  pixels(): Float32Array | null {
    if (!this.inked) return null;
    const { width, height } = this.canvas;
    const digit = toMnist(grayFromRgba(this.ctx.getImageData(0, 0, width, height).data, width, height));
    return digit.blank ? null : digit.pixels;
  }

  /** Draws a stroke through `points` (canvas pixels), as a test or a demo would. */
  stroke(points: { x: number; y: number }[]): void {
    this.last = null;
    for (const p of points) this.lineTo(p);
    this.last = null;
  }

  private point(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * this.canvas.width, y: ((e.clientY - r.top) / r.height) * this.canvas.height };
  }

  private down(e: PointerEvent): void {
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.last = null;
    this.lineTo(this.point(e));
  }

  private move(e: PointerEvent): void {
    if (this.last === null) return;
    e.preventDefault();
    // Coalesced events keep fast strokes smooth where the browser batches pointer moves.
    const events = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
    for (const ev of events.length > 0 ? events : [e]) this.lineTo(this.point(ev));
  }

  private lineTo(p: { x: number; y: number }): void {
    const ctx = this.ctx;
    // An MNIST stroke is ~2.5 px of the 20 px box a digit is scaled into: 1/12 of a digit drawn full-height.
    ctx.lineWidth = this.canvas.width / 12;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = '#fff';
    ctx.beginPath();
    const from = this.last ?? p;
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(p.x + (from === p ? 0.01 : 0), p.y);
    ctx.stroke();
    this.last = p;
    this.inked = true;
    this.changed();
  }

  private changed(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.onChange();
    });
  }
}
