/**
 * `confusion.png`: the confusion matrix as a heatmap, rows = true class, columns = predicted class, the
 * count written in every cell. The colour follows √count: on a linear scale every mistake (tens) would
 * look as white as a zero next to the diagonal's thousands.
 */
import type { Canvas } from '@napi-rs/canvas';
import { blues, css, luminance, type Rgb } from './color.ts';
import { createFigure, drawColorbar, drawHeader, recordCell, style, text } from './draw.ts';
import type { Rect } from './layout.ts';

/** The colour of a cell holding `count` when the largest cell holds `max`. */
export function confusionColor(count: number, max: number): Rgb {
  return blues(Math.sqrt(count / Math.max(1, max)));
}

export interface ConfusionLayout {
  width: number;
  height: number;
  /** cells[true][predicted]. */
  cells: Rect[][];
  colorbar: Rect;
}

export function confusionLayout(classes: number): ConfusionLayout {
  const cell = Math.max(16, Math.min(46, Math.round(460 / classes)));
  const x0 = style.margin + 56; // room for "True" (rotated) and the row labels
  const y0 = style.headerHeight + 16; // below the colour bar's label
  const cells = Array.from({ length: classes }, (_, i) =>
    Array.from({ length: classes }, (_, j) => ({ x: x0 + j * cell, y: y0 + i * cell, width: cell, height: cell })),
  );
  const side = classes * cell;
  const colorbar = { x: x0 + side + 28, y: y0, width: style.colorbarWidth, height: side };
  return {
    width: Math.max(style.minWidth, colorbar.x + colorbar.width + style.colorbarLabels + style.margin),
    height: y0 + side + 52 + style.margin, // column labels and "Predicted" below
    cells,
    colorbar,
  };
}

/** confusion[true][predicted] = count; `about` says which data it counts ("test set, 10,000 images"). */
export function drawConfusion(confusion: number[][], about: string): Canvas {
  const k = confusion.length;
  const layout = confusionLayout(k);
  const { canvas, ctx } = createFigure(layout.width, layout.height);
  const max = Math.max(1, ...confusion.flat());
  drawHeader(ctx, `Confusion matrix: ${about}`, 'Row: the true digit, column: the prediction; the diagonal counts correct answers. Colour ∝ √count.');
  const size = layout.cells[0]?.[0]?.width ?? 0;
  const fontSize = size >= 40 ? style.textSize : style.smallSize - 1;
  confusion.forEach((row, i) =>
    row.forEach((count, j) => {
      const r = layout.cells[i][j];
      const color = confusionColor(count, max);
      ctx.fillStyle = css(color);
      ctx.fillRect(r.x, r.y, r.width, r.height);
      recordCell(ctx, i, j, count, r, color);
      const ink = count === 0 ? '#9aa0a6' : luminance(color) < 0.55 ? '#fff' : style.text;
      text(ctx, String(count), r.x + r.width / 2, r.y + r.height / 2, {
        size: fontSize,
        color: ink,
        align: 'center',
        baseline: 'middle',
        bold: i === j,
      });
    }),
  );
  // Thin white lines between the cells keep neighbouring equal colours apart.
  ctx.fillStyle = '#fff';
  const first = layout.cells[0][0];
  const side = k * size;
  for (let n = 1; n < k; n++) {
    ctx.fillRect(first.x + n * size, first.y, 1, side);
    ctx.fillRect(first.x, first.y + n * size, side, 1);
  }
  for (let n = 0; n < k; n++) {
    const row = layout.cells[n][0];
    const col = layout.cells[k - 1][n];
    text(ctx, String(n), row.x - 8, row.y + size / 2, { align: 'right', baseline: 'middle' });
    text(ctx, String(n), col.x + size / 2, col.y + size + 6, { align: 'center', baseline: 'top' });
  }
  text(ctx, 'True', style.margin + 8, first.y + side / 2, { bold: true, align: 'center', baseline: 'middle', rotate: -Math.PI / 2 });
  text(ctx, 'Predicted', first.x + side / 2, first.y + side + 28, { bold: true, align: 'center', baseline: 'top' });
  drawColorbar(ctx, layout.colorbar, { min: 0, max, color: (v) => confusionColor(v, max), label: 'count' });
  return canvas;
}
