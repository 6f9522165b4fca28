/**
 * Separating ink from paper in a photo or scan: the steps before the MNIST ones. Pure (no Node, no DOM).
 *
 *   GrayImage ─cellHistograms→ ─isDarkInk→ polarity ─estimateBackground→ paper level
 *   GrayImage ─inkContrast→ ink in [0,1] (background 0) ─otsu→ threshold ─binarize→ Mask
 *
 * A Mask is a binary image (1 = ink) at the working resolution; components.ts finds the shapes in it.
 */
import type { GrayImage } from './image.ts';

export interface Mask {
  width: number;
  height: number;
  /** width*height values, 1 = ink, 0 = paper. */
  data: Uint8Array;
}

// ---------------------------------------------------------------------------------------------------
// Background: paper brightness is estimated on a coarse grid and divided out
// ---------------------------------------------------------------------------------------------------

/** The q-quantiles of values in [0,1] (from one 1024-bin histogram: O(n), no sort). */
export function quantiles(values: Float32Array, qs: readonly number[]): number[] {
  if (values.length === 0) return qs.map(() => NaN);
  const hist = new Uint32Array(1024);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    hist[v <= 0 ? 0 : v >= 1 ? 1023 : (v * 1024) | 0]++;
  }
  return qs.map((q) => {
    let seen = 0;
    for (let b = 0; b < 1024; b++) {
      seen += hist[b];
      if (seen >= q * values.length) return (b + 0.5) / 1024;
    }
    return 1;
  });
}

/** The q-quantile of values in [0,1] (`quantiles` for one q). */
export function quantile(values: Float32Array, q: number): number {
  return quantiles(values, [q])[0];
}

/** Median of all values (from a histogram, as `quantile`). */
export function median(values: Float32Array): number {
  return quantile(values, 0.5);
}

/** Per-cell histograms of a picture cut into `cell`x`cell` cells: the raw material of steps 2 and 3. */
export interface CellHistograms {
  cell: number;
  /** Grid size in cells. */
  gw: number;
  gh: number;
  /** `CELL_BINS` bins per cell, cell (gx, gy) at [(gy*gw + gx) * CELL_BINS, ...). */
  hist: Uint32Array;
  /** Pixels per cell. */
  count: Uint32Array;
}

export const CELL_BINS = 64;

export function cellHistograms(img: GrayImage, cell: number): CellHistograms {
  const { width: w, height: h, data } = img;
  const gw = Math.max(1, Math.ceil(w / cell)),
    gh = Math.max(1, Math.ceil(h / cell));
  const hist = new Uint32Array(gw * gh * CELL_BINS),
    count = new Uint32Array(gw * gh);
  const column = new Int32Array(w); // the cell of each column, times CELL_BINS
  for (let x = 0; x < w; x++) column[x] = ((x / cell) | 0) * CELL_BINS;
  for (let y = 0; y < h; y++) {
    const base = ((y / cell) | 0) * gw * CELL_BINS,
      r = y * w;
    for (let x = 0; x < w; x++) {
      const v = data[r + x];
      hist[base + column[x] + (v <= 0 ? 0 : v >= 1 ? CELL_BINS - 1 : (v * CELL_BINS) | 0)]++;
    }
  }
  for (let c = 0; c < count.length; c++) {
    let n = 0;
    for (let b = 0; b < CELL_BINS; b++) n += hist[c * CELL_BINS + b];
    count[c] = n;
  }
  return { cell, gw, gh, hist, count };
}

/** The q-quantile of cell c, as a bin index (0..CELL_BINS-1). */
function cellQuantile(cells: CellHistograms, c: number, q: number): number {
  const target = q * cells.count[c];
  let seen = 0;
  for (let b = 0; b < CELL_BINS - 1; b++) {
    seen += cells.hist[c * CELL_BINS + b];
    if (seen >= target) return b;
  }
  return CELL_BINS - 1;
}

/**
 * The paper level of each cell, on the grid: a high percentile of its pixels (the paper, when ink is
 * dark; a low one when the ink is light), then the extreme of its 3x3 neighbourhood (so that a cell
 * filled by a thick stroke gets its neighbours' paper) and a 3x3 mean.
 */
export function backgroundGrid(cells: CellHistograms, darkInk: boolean): Float32Array {
  const { gw, gh } = cells;
  let grid = new Float32Array(gw * gh);
  // 90th percentile for dark ink (the paper is the bright majority), 10th for light ink
  for (let c = 0; c < grid.length; c++) grid[c] = (cellQuantile(cells, c, darkInk ? 0.9 : 0.1) + 0.5) / CELL_BINS;
  const pick = darkInk ? Math.max : Math.min;
  for (const pass of ['extreme', 'mean'] as const) {
    const next = new Float32Array(grid.length);
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++) {
        let acc = pass === 'mean' ? 0 : grid[gy * gw + gx],
          n = 0;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const yy = gy + dy,
              xx = gx + dx;
            if (yy < 0 || yy >= gh || xx < 0 || xx >= gw) continue;
            const v = grid[yy * gw + xx];
            acc = pass === 'mean' ? acc + v : pick(acc, v);
            n++;
          }
        }
        next[gy * gw + gx] = pass === 'mean' ? acc / n : acc;
      }
    }
    grid = next;
  }
  return grid;
}

/** Ink contrast of one pixel value against the paper level `b` (see `inkContrast`). */
const contrast = (v: number, b: number, darkInk: boolean) => {
  const ink = darkInk ? 1 - v / Math.max(b, 0.04) : (v - b) / Math.max(1 - b, 0.04);
  return ink < 0 ? 0 : ink > 1 ? 1 : ink;
};

/**
 * True when the ink is darker than the paper, by trying both. Under each assumption the background is
 * estimated (`backgroundGrid`) and the pixels it leaves as strong ink (contrast > 0.3; from the cells'
 * histograms, so this costs O(cells), not O(pixels)) are counted. Under the right assumption they are the
 * strokes; under the wrong one the background next to each stroke takes the ink's level, and the paper
 * around every stroke becomes strong "ink": more of it than the strokes themselves. When the strokes are
 * too thin for that (a small digit on a big page: under 10% of every cell), the wrong assumption finds no
 * ink at all, so a side that finds almost none (under 2% of the other's and 0.01% of the picture) loses. Sensor noise, a gradient of
 * light or a shadow's edge leave weak contrast on both sides and are not counted. Ties (a blank picture)
 * go to dark ink. Comparing the whole picture's percentiles instead left the polarity of a small digit on
 * a big page to chance; comparing each cell's did so for a marker stroke wider than a cell.
 */
export function isDarkInk(cells: CellHistograms): boolean {
  const strong = (darkInk: boolean) => {
    const grid = backgroundGrid(cells, darkInk);
    let n = 0;
    for (let c = 0; c < grid.length; c++) {
      for (let b = 0; b < CELL_BINS; b++) if (contrast((b + 0.5) / CELL_BINS, grid[c], darkInk) > 0.3) n += cells.hist[c * CELL_BINS + b];
    }
    return n;
  };
  const dark = strong(true),
    light = strong(false);
  let pixels = 0;
  for (let c = 0; c < cells.count.length; c++) pixels += cells.count[c];
  const none = (n: number, other: number) => n < 0.02 * other && n < 1e-4 * pixels;
  if (none(light, dark)) return true;
  if (none(dark, light)) return false;
  return dark <= light;
}

/**
 * The local background level, as a smooth image: `backgroundGrid`, interpolated bilinearly back to full
 * size. This is a grey-level closing by a large structuring element on a grid (cf. Gonzalez & Woods,
 * "Digital Image Processing", top-hat transform for uneven illumination), at a few % of its cost.
 */
export function estimateBackground(img: GrayImage, cell: number, darkInk: boolean, cells = cellHistograms(img, cell)): GrayImage {
  const { width: w, height: h } = img;
  const { gw, gh } = cells;
  const grid = backgroundGrid(cells, darkInk);
  // bilinear interpolation between cell centres, the weights of each column computed once
  const lerp = (n: number, g: number) => {
    const i0 = new Int32Array(n),
      i1 = new Int32Array(n),
      a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const f = Math.min(Math.max((i + 0.5) / cell - 0.5, 0), g - 1),
        lo = Math.min(Math.floor(f), Math.max(g - 2, 0));
      i0[i] = lo;
      i1[i] = Math.min(lo + 1, g - 1);
      a[i] = f - lo;
    }
    return { i0, i1, a };
  };
  const X = lerp(w, gw),
    Y = lerp(h, gh);
  const out = new Float32Array(w * h);
  const top = new Float32Array(gw);
  for (let y = 0; y < h; y++) {
    const r0 = Y.i0[y] * gw,
      r1 = Y.i1[y] * gw,
      ay = Y.a[y];
    for (let gx = 0; gx < gw; gx++) top[gx] = (1 - ay) * grid[r0 + gx] + ay * grid[r1 + gx];
    for (let x = 0; x < w; x++) out[y * w + x] = (1 - X.a[x]) * top[X.i0[x]] + X.a[x] * top[X.i1[x]];
  }
  return { width: w, height: h, data: out };
}

/**
 * How much ink each pixel holds, in [0,1] with the paper at 0. Dark ink on paper: 1 − I/B, the fraction of
 * the local paper brightness B the ink absorbs, which is what a shadow or a gradient of light leaves
 * unchanged (light multiplies; dividing by the background is flat-field correction). Light ink on a dark
 * ground (a drawing pad): (I − B)/(1 − B).
 */
export function inkContrast(img: GrayImage, background: GrayImage, darkInk: boolean): GrayImage {
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = contrast(img.data[i], background.data[i], darkInk);
  return { width: img.width, height: img.height, data };
}

/**
 * Otsu's threshold (N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. SMC
 * 9(1), 1979): the level that maximises the between-class variance of the two classes it splits the
 * histogram into. Chosen per picture, so faint pencil and bold marker both separate from the paper.
 * Only values above `above` are counted.
 */
export function otsu(img: GrayImage, bins = 256, above = -Infinity): number {
  const hist = new Float64Array(bins);
  let total = 0;
  for (let i = 0; i < img.data.length; i++) {
    const v = img.data[i];
    if (v <= above) continue;
    hist[v <= 0 ? 0 : v >= 1 ? bins - 1 : (v * bins) | 0]++;
    total++;
  }
  let sumAll = 0;
  for (let b = 0; b < bins; b++) sumAll += b * hist[b];
  let w0 = 0,
    sum0 = 0,
    best = 0,
    bestB = 0;
  for (let b = 0; b < bins - 1; b++) {
    w0 += hist[b];
    sum0 += b * hist[b];
    const w1 = total - w0;
    if (w0 === 0 || w1 === 0) continue;
    const m0 = sum0 / w0,
      m1 = (sumAll - sum0) / w1;
    const between = w0 * w1 * (m0 - m1) ** 2;
    if (between > best) {
      best = between;
      bestB = b;
    }
  }
  return (bestB + 1) / bins;
}

export function binarize(img: GrayImage, threshold: number): Mask {
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = img.data[i] >= threshold ? 1 : 0;
  return { width: img.width, height: img.height, data };
}
