/** Layout math for the figures, with no drawing: grids of cells, axis scales and tick values. */

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The point in the middle of a rect. */
export function center(r: Rect): { x: number; y: number } {
  return { x: r.x + r.width / 2, y: r.y + r.height / 2 };
}

/** Columns for a near-square grid of n cells: 16 → 4 (4x4), 36 → 6 (6x6), 10 → 4 (4x3). */
export function squareColumns(n: number): number {
  return Math.max(1, Math.ceil(Math.sqrt(n)));
}

/** Columns for a wide grid of at most `maxColumns`, balanced over the rows: 16 → 8 (2 rows), 36 → 12 (3 rows). */
export function wideColumns(n: number, maxColumns: number): number {
  const rows = Math.max(1, Math.ceil(n / maxColumns));
  return Math.max(1, Math.ceil(n / rows));
}

/** n cells of `cell` size in rows of `columns`, `gap` apart, starting at (x, y). Cell i is at row ⌊i/columns⌋. */
export function grid(
  n: number,
  columns: number,
  cell: { width: number; height: number },
  gap: { x: number; y: number },
  origin: { x: number; y: number },
): { cells: Rect[]; width: number; height: number } {
  const cols = Math.min(columns, Math.max(1, n));
  const rows = Math.ceil(n / cols);
  const cells = Array.from({ length: n }, (_, i) => ({
    x: origin.x + (i % cols) * (cell.width + gap.x),
    y: origin.y + Math.floor(i / cols) * (cell.height + gap.y),
    width: cell.width,
    height: cell.height,
  }));
  return { cells, width: cols * cell.width + (cols - 1) * gap.x, height: rows * cell.height + Math.max(0, rows - 1) * gap.y };
}

/** Maps [d0, d1] linearly onto [r0, r1] (r1 < r0 for a y axis that grows upwards). */
export function linearScale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/**
 * "Nice" tick values covering [min, max]: multiples of 1, 2 or 5 times a power of ten, about `target`
 * of them (Heckbert, "Nice numbers for graph labels", Graphics Gems, 1990).
 */
export function niceTicks(min: number, max: number, target = 5): { ticks: number[]; step: number } {
  if (!(max > min)) return { ticks: [min], step: 1 };
  const rough = (max - min) / Math.max(1, target);
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const residual = rough / magnitude;
  const step = (residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1) * magnitude;
  const ticks: number[] = [];
  const eps = step * 1e-9;
  for (let i = Math.ceil((min - eps) / step); i * step <= max + eps; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, step };
}

/** [lo, hi] widened outwards to whole steps of `niceTicks`, for an axis whose ends are tick values. */
export function niceDomain(min: number, max: number, target = 5): [number, number] {
  if (!(max > min)) return [min - 1, max + 1];
  const { step } = niceTicks(min, max, target);
  return [Math.floor(min / step + 1e-9) * step, Math.ceil(max / step - 1e-9) * step];
}

/** A tick label with as many decimals as the step needs, and a true minus sign: 0.25, −0.1, 1,000. */
export function formatTick(v: number, step: number): string {
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  const text = Math.abs(v).toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  return v < 0 && Number(text.replace(/,/g, '')) !== 0 ? `\u2212${text}` : text;
}
