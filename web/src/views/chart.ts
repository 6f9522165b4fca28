/**
 * A small line chart on a canvas: a few series against the training step, redrawn once per frame. Its
 * colours are the canvas's CSS custom properties (--chart-bg, --chart-grid, --chart-axis, --chart-text,
 * and a series may name one, e.g. --series-1), so the chart follows the page's light or dark theme and
 * redraws when the system's preference changes.
 */

export interface ChartOptions {
  /** Fixed y range; when omitted, 0..max of the data. */
  yMax?: number;
  yFormat: (v: number) => string;
}

interface Series {
  name: string;
  /** A CSS colour, or the name of a custom property holding one (`--series-1`). */
  color: string;
  /** Draw dots (sparse series such as validation accuracy) instead of a line. */
  dots: boolean;
  points: { x: number; y: number }[];
}

/** The dark theme's colours, for a canvas without the custom properties. */
const FALLBACK: Record<string, string> = { '--chart-bg': '#11141b', '--chart-grid': '#262a36', '--chart-axis': '#5b6275', '--chart-text': '#a9afbf' };

export class LineChart {
  private readonly list: Series[] = [];
  private scheduled = false;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly options: ChartOptions,
  ) {
    new ResizeObserver(() => this.schedule()).observe(canvas);
    matchMedia('(prefers-color-scheme: light)').addEventListener('change', () => this.schedule());
  }

  /** A colour from the canvas's style: `--name` is looked up (with the dark theme's value as fallback). */
  private color(style: CSSStyleDeclaration, value: string): string {
    if (!value.startsWith('--')) return value;
    return style.getPropertyValue(value).trim() || FALLBACK[value] || '#888';
  }

  addSeries(name: string, color: string, dots = false): void {
    this.list.push({ name, color, dots, points: [] });
    this.schedule();
  }

  push(name: string, x: number, y: number): void {
    this.list.find((s) => s.name === name)?.points.push({ x, y });
    this.schedule();
  }

  reset(): void {
    for (const s of this.list) s.points = [];
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.draw();
    });
  }

  private draw(): void {
    const dpr = window.devicePixelRatio || 1;
    const cssW = this.canvas.clientWidth || 320,
      cssH = this.canvas.clientHeight || 180;
    if (this.canvas.width !== Math.round(cssW * dpr)) this.canvas.width = Math.round(cssW * dpr);
    if (this.canvas.height !== Math.round(cssH * dpr)) this.canvas.height = Math.round(cssH * dpr);
    const ctx = this.canvas.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const style = getComputedStyle(this.canvas);
    const [GRID, AXIS, TEXT] = ['--chart-grid', '--chart-axis', '--chart-text'].map((v) => this.color(style, v));
    ctx.fillStyle = this.color(style, '--chart-bg');
    ctx.fillRect(0, 0, cssW, cssH);
    ctx.font = '11px system-ui, sans-serif';

    const pad = { left: 44, right: 10, top: 22, bottom: 22 };
    const w = cssW - pad.left - pad.right,
      h = cssH - pad.top - pad.bottom;
    const all = this.list.flatMap((s) => s.points);
    const xMax = Math.max(10, ...all.map((p) => p.x));
    const yMax = this.options.yMax ?? niceCeil(Math.max(all.length ? 1e-3 : 2.5, ...all.map((p) => p.y)));
    const X = (x: number) => pad.left + (x / xMax) * w;
    const Y = (y: number) => pad.top + h - (Math.min(Math.max(y, 0), yMax) / yMax) * h;

    // grid and axes
    ctx.strokeStyle = GRID;
    ctx.fillStyle = TEXT;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    // as many grid lines as give round labels: 2.5 → 0.5 steps, 1 → 0.25 steps
    const ticks = [5, 4, 6, 3].find((n) => Math.abs(((yMax / n) * 100) % 1) < 1e-9) ?? 4;
    for (let i = 0; i <= ticks; i++) {
      const v = (yMax * i) / ticks;
      ctx.beginPath();
      ctx.moveTo(pad.left, Y(v) + 0.5);
      ctx.lineTo(pad.left + w, Y(v) + 0.5);
      ctx.stroke();
      ctx.fillText(this.options.yFormat(v), pad.left - 6, Y(v));
    }
    ctx.strokeStyle = AXIS;
    ctx.beginPath();
    ctx.moveTo(pad.left + 0.5, pad.top);
    ctx.lineTo(pad.left + 0.5, pad.top + h + 0.5);
    ctx.lineTo(pad.left + w, pad.top + h + 0.5);
    ctx.stroke();
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    ctx.fillText('0', X(0), pad.top + h + 5);
    ctx.fillText(`${Math.round(xMax)} steps`, pad.left + w - 24, pad.top + h + 5);

    // series
    for (const s of this.list) {
      ctx.strokeStyle = ctx.fillStyle = this.color(style, s.color);
      if (s.dots) {
        for (const p of s.points) {
          ctx.beginPath();
          ctx.arc(X(p.x), Y(p.y), 3, 0, 2 * Math.PI);
          ctx.fill();
        }
      } else if (s.points.length > 0) {
        ctx.lineWidth = 1.75;
        ctx.beginPath();
        s.points.forEach((p, i) => (i === 0 ? ctx.moveTo(X(p.x), Y(p.y)) : ctx.lineTo(X(p.x), Y(p.y))));
        ctx.stroke();
      }
    }

    // legend, with the latest value of each series
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    let lx = pad.left + 4;
    for (const s of this.list) {
      const last = s.points[s.points.length - 1];
      const label = last ? `${s.name} ${this.options.yFormat(last.y)}` : s.name;
      ctx.fillStyle = this.color(style, s.color);
      ctx.fillRect(lx, 7, 10, 3);
      ctx.fillStyle = TEXT;
      ctx.fillText(label, lx + 14, 9);
      lx += ctx.measureText(label).width + 30;
    }
  }
}

/** 0.83 → 1, 2.3 → 2.5, 0.27 → 0.3: a round number at or above v for the top of an axis. */
function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
