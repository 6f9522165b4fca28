/**
 * The shapes in a binary ink mask (paper.ts makes it): ruled lines and page edges removed, 8-connected
 * components labelled, stroke width measured, dilation and erosion. Pure (no Node, no DOM).
 */
import type { Mask } from './paper.ts';

// ---------------------------------------------------------------------------------------------------
// Ruled lines and connected components
// ---------------------------------------------------------------------------------------------------

/** Slopes tried for ruled lines: tan of −3°…3° in steps of 0.25° (a page photographed a little askew). */
const SLOPES = Array.from({ length: 25 }, (_, i) => Math.tan((((i - 12) / 4) * Math.PI) / 180));

/**
 * Removes ruled lines (and other long thin straight lines: a margin rule, a table's edge): a line is a band,
 * straight at one of `SLOPES`, along which ink covers at least 60% of the picture's width (or height),
 * found by projecting the ink along each slope (a Hough transform restricted to near-horizontal and
 * near-vertical lines; Duda & Hart, "Use of the Hough transformation to detect lines and curves in
 * pictures", CACM 15(1), 1972). Only bands thinner than the pen's own stroke (0.8 of it) are lines: the wide dark
 * band of a table beyond the page edge is not; and a line runs from edge to edge (within 3%), which a
 * digit's own long bar (a 7's, a 2's) does not.
 * In each band, ink is cleared except where a stroke crosses it (ink within `reach` pixels on both sides),
 * so a digit written across a line keeps its strokes. Returns the number of pixels removed.
 */
export function removeLines(mask: Mask, reach: number): number {
  let removed = 0;
  for (const horizontal of [true, false]) {
    const L = horizontal ? mask.width : mask.height;
    const bands = findLines(mask, horizontal);
    if (bands.length === 0) continue;
    // the pen's stroke width, measured without the bands; and how far along each band its ink reaches
    const rest: Mask = { ...mask, data: new Uint8Array(mask.data) };
    const reachOf = bands.map(() => ({ first: L, last: -1 }));
    bands.forEach((band, k) =>
      forBand(mask, horizontal, [band], (i, u) => {
        if (!mask.data[i]) return;
        rest.data[i] = 0;
        reachOf[k].first = Math.min(reachOf[k].first, u);
        reachOf[k].last = Math.max(reachOf[k].last, u);
      }),
    );
    const pen = strokeWidth(rest);
    // a ruled line runs from edge to edge of the picture; a digit's long bar (a 7's, a 2's) does not
    const lines = bands.filter((b, k) => b.hi - b.lo + 1 <= Math.max(1, 0.8 * pen) && reachOf[k].first <= 0.03 * L && reachOf[k].last >= 0.97 * L - 1);
    removed += clearBands(mask, horizontal, lines, reach);
  }
  return removed;
}

/** A line: rows lo..hi of the projection at `slope` (ρ = v − slope·(u − L/2), u along the line, v across). */
interface Band {
  slope: number;
  lo: number;
  hi: number;
}

function findLines(mask: Mask, horizontal: boolean): Band[] {
  const { width: w, height: h, data } = mask;
  const L = horizontal ? w : h,
    A = horizontal ? h : w;
  const margin = Math.ceil(L * SLOPES[SLOPES.length - 1]) + 1,
    bins = A + 2 * margin;
  const counts = SLOPES.map(() => new Uint32Array(bins));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!data[y * w + x]) continue;
      const u = (horizontal ? x : y) - L / 2,
        v = horizontal ? y : x;
      for (let k = 0; k < SLOPES.length; k++) counts[k][Math.round(v - SLOPES[k] * u) + margin]++;
    }
  }
  // the slope whose projection has the highest peak is the lines' own (ruled lines are parallel)
  let best = 0,
    bestPeak = 0;
  for (let k = 0; k < SLOPES.length; k++) {
    const peak = counts[k].reduce((m, c) => Math.max(m, c), 0);
    if (peak > bestPeak) [best, bestPeak] = [k, peak];
  }
  const c = counts[best],
    bands: Band[] = [];
  for (let r = 0; r < bins; r++) {
    if (c[r] < 0.6 * L) continue;
    let lo = r,
      hi = r;
    while (lo > 0 && c[lo - 1] >= 0.3 * L) lo--;
    while (hi < bins - 1 && c[hi + 1] >= 0.3 * L) hi++;
    bands.push({ slope: SLOPES[best], lo: lo - margin, hi: hi - margin });
    r = hi;
  }
  return bands;
}

/** Calls `fn` with the index of every pixel inside the bands. */
function forBand(mask: Mask, horizontal: boolean, bands: Band[], fn: (i: number, u: number, v: number) => void): void {
  const { width: w, height: h } = mask;
  const L = horizontal ? w : h,
    A = horizontal ? h : w;
  for (const b of bands) {
    for (let u = 0; u < L; u++) {
      const off = b.slope * (u - L / 2);
      for (let v = Math.max(0, Math.round(b.lo + off)); v <= Math.min(A - 1, Math.round(b.hi + off)); v++) fn(horizontal ? v * w + u : u * w + v, u, v);
    }
  }
}

function clearBands(mask: Mask, horizontal: boolean, bands: Band[], reach: number): number {
  const { width: w, data } = mask;
  const A = horizontal ? mask.height : w;
  const at = (u: number, v: number) => (horizontal ? v * w + u : u * w + v);
  const ink = (u: number, v: number) => v >= 0 && v < A && data[at(u, v)] === 1;
  let removed = 0;
  const L = horizontal ? w : mask.height;
  for (const b of bands) {
    for (let u = 0; u < L; u++) {
      const off = b.slope * (u - L / 2),
        lo = Math.round(b.lo + off) - 1, // a pixel of slack: the slope is only known to 0.25°
        hi = Math.round(b.hi + off) + 1;
      let above = false,
        below = false;
      for (let r = 1; r <= reach; r++) {
        if (ink(u, lo - r)) above = true;
        if (ink(u, hi + r)) below = true;
      }
      if (above && below) continue; // a stroke crosses the line here
      for (let v = Math.max(lo, 0); v <= Math.min(hi, A - 1); v++) {
        if (data[at(u, v)] === 1) {
          data[at(u, v)] = 0;
          removed++;
        }
      }
    }
  }
  return removed;
}

/** One 8-connected component of ink. */
export interface Component {
  label: number;
  area: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  touchesBorder: boolean;
}

/** Labels the 8-connected components (flood fill with an explicit stack); `labels` holds label+1 per pixel, 0 = paper. */
export function components(mask: Mask): { labels: Int32Array; list: Component[] } {
  const { width: w, height: h, data } = mask;
  const labels = new Int32Array(data.length);
  const list: Component[] = [];
  const stack = new Int32Array(data.length);
  for (let start = 0; start < data.length; start++) {
    if (data[start] === 0 || labels[start] !== 0) continue;
    const c: Component = { label: list.length, area: 0, x0: w, y0: h, x1: -1, y1: -1, touchesBorder: false };
    let top = 0;
    stack[top++] = start;
    labels[start] = c.label + 1;
    while (top > 0) {
      const i = stack[--top],
        x = i % w,
        y = (i - x) / w;
      c.area++;
      if (x < c.x0) c.x0 = x;
      if (x > c.x1) c.x1 = x;
      if (y < c.y0) c.y0 = y;
      if (y > c.y1) c.y1 = y;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1) c.touchesBorder = true;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const j = yy * w + xx;
          if (data[j] === 1 && labels[j] === 0) {
            labels[j] = c.label + 1;
            stack[top++] = j;
          }
        }
      }
    }
    list.push(c);
  }
  return { labels, list };
}

// ---------------------------------------------------------------------------------------------------
// Stroke width
// ---------------------------------------------------------------------------------------------------

/**
 * Mean stroke width, 2·area / perimeter: a stroke of length L and width W has area LW and a boundary of
 * about 2L. The perimeter counts pixel edges between ink and paper (4-neighbour), the same estimator that
 * gives MNIST's typical width (`MNIST_STROKE_WIDTH`), so the two compare like for like at any scale.
 */
export function strokeWidth(mask: Mask): number {
  const { width: w, height: h, data } = mask;
  let area = 0,
    perimeter = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (data[y * w + x] === 0) continue;
      area++;
      if (y === 0 || data[(y - 1) * w + x] === 0) perimeter++;
      if (y === h - 1 || data[(y + 1) * w + x] === 0) perimeter++;
      if (x === 0 || data[y * w + x - 1] === 0) perimeter++;
      if (x === w - 1 || data[y * w + x + 1] === 0) perimeter++;
    }
  }
  return perimeter > 0 ? (2 * area) / perimeter : 0;
}
