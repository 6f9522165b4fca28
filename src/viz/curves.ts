/**
 * `curves.png`: the learning curves from metrics.json's history, against iteration. Left: the training
 * loss; right: training-batch accuracy and validation accuracy. Each training point is the mean over the
 * batches since the previous point, as the training log prints it.
 */
import type { Canvas, SKRSContext2D } from '@napi-rs/canvas';
import type { HistoryEntry } from '../train/loop.ts';
import { createFigure, drawHeader, style, text, textWidth } from './draw.ts';
import { formatTick, linearScale, niceDomain, niceTicks, type Rect } from './layout.ts';

export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
  /** Draw a dot at every point (for sparse series such as validation). */
  markers: boolean;
}

/** One panel: its series and how to label its y axis. */
export interface Plot {
  title: string;
  yLabel: string;
  series: Series[];
  yDomain: [number, number];
  yFormat: (v: number, step: number) => string;
  legend: 'top' | 'bottom';
}

/** matplotlib's first two tab10 colours: blue for training, orange for validation. */
const TRAIN_COLOR = '#1f77b4';
const VALIDATION_COLOR = '#ff7f0e';

/** The two panels' data from the training history. */
export function curvePlots(history: HistoryEntry[]): { loss: Plot; accuracy: Plot } {
  const lossPoints = history.map((e) => ({ x: e.iteration, y: e.loss }));
  const batch = history.map((e) => ({ x: e.iteration, y: 100 * e.batchAccuracy }));
  const validation = history.filter((e) => e.validationAccuracy !== undefined).map((e) => ({ x: e.iteration, y: 100 * e.validationAccuracy! }));
  const maxLoss = Math.max(0, ...lossPoints.map((p) => p.y));
  const minAcc = Math.min(100, ...batch.map((p) => p.y), ...validation.map((p) => p.y));
  const percent = (v: number, step: number) => `${formatTick(v, step)}%`;
  return {
    loss: {
      title: 'Loss',
      yLabel: 'cross-entropy',
      series: [{ name: 'training batches', color: TRAIN_COLOR, points: lossPoints, markers: lossPoints.length < 3 }],
      yDomain: niceDomain(0, maxLoss > 0 ? maxLoss : 1),
      yFormat: formatTick,
      legend: 'top',
    },
    accuracy: {
      title: 'Accuracy',
      yLabel: 'accuracy',
      series: [
        { name: 'training batches', color: TRAIN_COLOR, points: batch, markers: batch.length < 3 },
        { name: 'validation set', color: VALIDATION_COLOR, points: validation, markers: true },
      ],
      yDomain: [Math.max(0, niceDomain(minAcc, 100)[0]), 100],
      yFormat: percent,
      legend: 'bottom',
    },
  };
}

const PLOT = { width: 440, height: 280 };
const AXIS_LEFT = 64;
const AXIS_BOTTOM = 48;
const PANEL_TITLE = 26;

export function curvesLayout(): { width: number; height: number; plots: [Rect, Rect] } {
  const y = style.headerHeight + PANEL_TITLE;
  const left = { x: style.margin + AXIS_LEFT, y, ...PLOT };
  const right = { x: left.x + PLOT.width + 36 + AXIS_LEFT, y, ...PLOT };
  return { width: right.x + PLOT.width + style.margin + 12, height: y + PLOT.height + AXIS_BOTTOM + style.margin, plots: [left, right] };
}

export function drawCurves(history: HistoryEntry[]): Canvas {
  const layout = curvesLayout();
  const { canvas, ctx } = createFigure(layout.width, layout.height);
  const last = history.length > 0 ? history[history.length - 1].iteration : 1;
  drawHeader(
    ctx,
    `Learning curves: ${last.toLocaleString('en-US')} iterations`,
    'Training values are means over the batches since the previous point; validation accuracy is on held-out images.',
  );
  const plots = curvePlots(history);
  const xDomain = niceDomain(0, last);
  drawPlot(ctx, layout.plots[0], plots.loss, xDomain);
  drawPlot(ctx, layout.plots[1], plots.accuracy, xDomain);
  return canvas;
}

function drawPlot(ctx: SKRSContext2D, r: Rect, plot: Plot, xDomain: [number, number]): void {
  const x = linearScale(xDomain[0], xDomain[1], r.x, r.x + r.width);
  const y = linearScale(plot.yDomain[0], plot.yDomain[1], r.y + r.height, r.y);
  const xt = niceTicks(xDomain[0], xDomain[1], 5);
  const yt = niceTicks(plot.yDomain[0], plot.yDomain[1], 5);

  // --- grid, axes, ticks
  ctx.save();
  ctx.lineWidth = 1;
  ctx.strokeStyle = '#ececec';
  for (const v of yt.ticks) hline(ctx, r.x, r.x + r.width, y(v));
  for (const v of xt.ticks) vline(ctx, x(v), r.y, r.y + r.height);
  ctx.strokeStyle = '#444';
  hline(ctx, r.x, r.x + r.width, r.y + r.height);
  vline(ctx, r.x, r.y, r.y + r.height);
  ctx.restore();
  for (const v of yt.ticks) text(ctx, plot.yFormat(v, yt.step), r.x - 6, y(v), { size: style.smallSize, align: 'right', baseline: 'middle' });
  for (const v of xt.ticks) text(ctx, formatTick(v, xt.step), x(v), r.y + r.height + 6, { size: style.smallSize, align: 'center', baseline: 'top' });
  text(ctx, plot.title, r.x, r.y - 10, { size: 15, bold: true });
  text(ctx, 'iteration', r.x + r.width / 2, r.y + r.height + 26, { align: 'center', baseline: 'top', color: style.muted });
  text(ctx, plot.yLabel, r.x - AXIS_LEFT + 4, r.y + r.height / 2, {
    align: 'center',
    baseline: 'top',
    color: style.muted,
    rotate: -Math.PI / 2,
  });

  // --- the series, clipped to the plot area
  ctx.save();
  ctx.beginPath();
  ctx.rect(r.x - 6, r.y - 6, r.width + 12, r.height + 12); // room for a marker on the frame
  ctx.clip();
  for (const s of plot.series) {
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    s.points.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.x), y(p.y)) : ctx.lineTo(x(p.x), y(p.y))));
    ctx.stroke();
    if (s.markers) {
      for (const p of s.points) {
        ctx.beginPath();
        ctx.arc(x(p.x), y(p.y), 4, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
  ctx.restore();

  // --- legend, in the corner the curves leave empty (loss falls, accuracy rises)
  const shown = plot.series.filter((s) => s.points.length > 0);
  const lw = 34 + Math.max(...shown.map((s) => textWidth(ctx, s.name, style.smallSize)));
  const lh = 8 + 18 * shown.length;
  const lx = r.x + r.width - lw - 8;
  const ly = plot.legend === 'top' ? r.y + 8 : r.y + r.height - lh - 8;
  ctx.fillStyle = 'rgba(255,255,255,0.9)';
  ctx.fillRect(lx, ly, lw, lh);
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(lx + 0.5, ly + 0.5, lw, lh);
  shown.forEach((s, i) => {
    const cy = ly + 13 + 18 * i;
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 2;
    hline(ctx, lx + 8, lx + 26, cy);
    if (s.markers) {
      ctx.beginPath();
      ctx.arc(lx + 17, cy, 3.5, 0, 2 * Math.PI);
      ctx.fill();
    }
    text(ctx, s.name, lx + 30, cy, { size: style.smallSize, baseline: 'middle' });
  });
}

function hline(ctx: SKRSContext2D, x0: number, x1: number, yv: number): void {
  const yy = Math.round(yv) + 0.5;
  ctx.beginPath();
  ctx.moveTo(x0, yy);
  ctx.lineTo(x1, yy);
  ctx.stroke();
}

function vline(ctx: SKRSContext2D, xv: number, y0: number, y1: number): void {
  const xx = Math.round(xv) + 0.5;
  ctx.beginPath();
  ctx.moveTo(xx, y0);
  ctx.lineTo(xx, y1);
  ctx.stroke();
}
