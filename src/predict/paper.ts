/**
 * Separating ink from paper in a photo or scan: the steps before the MNIST ones. Pure (no Node, no DOM).
 *
 *   GrayImage ─inkContrast→ ink in [0,1] (background 0) ─otsu→ threshold ─binarize→ Mask
 *   Mask ─removeLines→ ─components→ keep the digit, drop dust, lines and the page border
 *   Mask ─strokeWidth / dilate / erode→ strokes as thick as MNIST's
 *
 * A Mask is a binary image (1 = ink) at the working resolution.
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

/** The q-quantile of values in [0,1] (from a 1024-bin histogram: O(n), no sort). */
export function quantile(values: Float32Array, q: number): number {
  if (values.length === 0) return NaN;
  const hist = new Uint32Array(1024);
  for (let i = 0; i < values.length; i++) hist[Math.min(1023, Math.max(0, Math.floor(values[i] * 1024)))]++;
  let seen = 0;
  for (let b = 0; b < 1024; b++) {
    seen += hist[b];
    if (seen >= q * values.length) return (b + 0.5) / 1024;
  }
  return 1;
}

/**
 * True when the ink is darker than the paper. The paper is most of the picture, so the median pixel is
 * paper; the ink is at the far end from it: dark ink leaves the median near the brightest pixels (1st and
 * 99th percentiles stand for the extremes, ignoring specks). Grey paper under dim light is still paper.
 */
export function isDarkInk(values: Float32Array): boolean {
  const lo = quantile(values, 0.01),
    mid = quantile(values, 0.5),
    hi = quantile(values, 0.99);
  return hi - mid < mid - lo;
}

/** Median of all values (from a histogram, as `quantile`). */
export function median(values: Float32Array): number {
  if (values.length === 0) return NaN;
  const hist = new Uint32Array(1024); // a histogram is enough: [0,1] in 1/1024 steps, O(n)
  for (let i = 0; i < values.length; i++) hist[Math.min(1023, Math.max(0, Math.floor(values[i] * 1024)))]++;
  let seen = 0;
  for (let b = 0; b < 1024; b++) {
    seen += hist[b];
    if (seen * 2 >= values.length) return (b + 0.5) / 1024;
  }
  return 1;
}

/**
 * The local background level, as a smooth image: the picture is cut into cells of `cell` pixels, each cell
 * takes a high percentile of its pixels (the paper, when ink is dark; a low one when the ink is light), each
 * grid value then takes the extreme of its 3x3 neighbourhood (so that a cell filled by a thick stroke gets
 * its neighbours' paper) and a 3x3 mean, and the grid is interpolated bilinearly back to full size.
 * This is a grey-level closing by a large structuring element on a grid (cf. Gonzalez & Woods, "Digital
 * Image Processing", top-hat transform for uneven illumination), at a few % of its cost.
 */
export function estimateBackground(img: GrayImage, cell: number, darkInk: boolean): GrayImage {
  const { width: w, height: h, data } = img;
  const gw = Math.max(1, Math.ceil(w / cell)),
    gh = Math.max(1, Math.ceil(h / cell));
  let grid = new Float32Array(gw * gh);
  const hist = new Uint32Array(64);
  for (let gy = 0; gy < gh; gy++) {
    for (let gx = 0; gx < gw; gx++) {
      hist.fill(0);
      let n = 0;
      for (let y = gy * cell; y < Math.min(h, (gy + 1) * cell); y++) {
        for (let x = gx * cell; x < Math.min(w, (gx + 1) * cell); x++) {
          hist[Math.min(63, Math.floor(data[y * w + x] * 64))]++;
          n++;
        }
      }
      // 90th percentile for dark ink (the paper is the bright majority), 10th for light ink
      const target = darkInk ? 0.9 * n : 0.1 * n;
      let seen = 0,
        b = 0;
      for (; b < 63; b++) {
        seen += hist[b];
        if (seen >= target) break;
      }
      grid[gy * gw + gx] = (b + 0.5) / 64;
    }
  }
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
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const fy = Math.min(Math.max((y + 0.5) / cell - 0.5, 0), gh - 1),
      y0 = Math.min(Math.floor(fy), Math.max(gh - 2, 0));
    const y1 = Math.min(y0 + 1, gh - 1),
      ay = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.min(Math.max((x + 0.5) / cell - 0.5, 0), gw - 1),
        x0 = Math.min(Math.floor(fx), Math.max(gw - 2, 0));
      const x1 = Math.min(x0 + 1, gw - 1),
        ax = fx - x0;
      out[y * w + x] = (1 - ay) * ((1 - ax) * grid[y0 * gw + x0] + ax * grid[y0 * gw + x1]) + ay * ((1 - ax) * grid[y1 * gw + x0] + ax * grid[y1 * gw + x1]);
    }
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
  for (let i = 0; i < data.length; i++) {
    const v = img.data[i],
      b = background.data[i];
    const ink = darkInk ? 1 - v / Math.max(b, 0.04) : (v - b) / Math.max(1 - b, 0.04);
    data[i] = ink < 0 ? 0 : ink > 1 ? 1 : ink;
  }
  return { width: img.width, height: img.height, data };
}

/**
 * Otsu's threshold (N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. SMC
 * 9(1), 1979): the level that maximises the between-class variance of the two classes it splits the
 * histogram into. Chosen per picture, so faint pencil and bold marker both separate from the paper.
 */
export function otsu(img: GrayImage, bins = 256): number {
  const hist = new Float64Array(bins);
  for (let i = 0; i < img.data.length; i++) hist[Math.min(bins - 1, Math.floor(img.data[i] * bins))]++;
  const total = img.data.length;
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

// ---------------------------------------------------------------------------------------------------
// Ruled lines and connected components
// ---------------------------------------------------------------------------------------------------

/**
 * Removes ruled lines and straight page edges: a component that spans at least 80% of the picture's width
 * and at most 30% of its height is a horizontal line, perhaps with a digit written across it (likewise
 * vertical). The line is fitted (least squares, y = a + bx, so a slightly tilted line is followed) through
 * the columns where the component is no thicker than the line itself, and the band of the line's thickness
 * around the fit is cleared, except where a stroke crosses it (ink within `reach` pixels on both sides).
 * Returns the number of pixels removed.
 */
export function removeLines(mask: Mask, reach: number): number {
  const { width: w, height: h, data } = mask;
  const { labels, list } = components(mask);
  let removed = 0;
  for (const c of list) {
    const cw = c.x1 - c.x0 + 1,
      ch = c.y1 - c.y0 + 1;
    for (const horizontal of [true, false]) {
      const along = horizontal ? cw : ch,
        across = horizontal ? ch : cw,
        W = horizontal ? w : h,
        H = horizontal ? h : w;
      if (along < 0.8 * W || across > 0.3 * H) continue;
      // u runs along the line, v across it
      const at = (u: number, v: number) => (horizontal ? v * w + u : u * w + v);
      const u0 = horizontal ? c.x0 : c.y0,
        v0 = horizontal ? c.y0 : c.x0,
        v1 = horizontal ? c.y1 : c.x1;
      const count = new Float64Array(along),
        mean = new Float64Array(along);
      for (let k = 0; k < along; k++) {
        let n = 0,
          sv = 0;
        for (let v = v0; v <= v1; v++)
          if (labels[at(u0 + k, v)] === c.label + 1) {
            n++;
            sv += v;
          }
        count[k] = n;
        mean[k] = n > 0 ? sv / n : NaN;
      }
      const sorted = Array.from(count)
        .filter((n) => n > 0)
        .sort((x, y) => x - y);
      if (sorted.length === 0) continue;
      const thickness = sorted[sorted.length >> 1];
      let n = 0,
        su = 0,
        sv = 0,
        suu = 0,
        suv = 0;
      for (let k = 0; k < along; k++) {
        if (count[k] === 0 || count[k] > 1.5 * thickness + 1) continue;
        n++;
        su += k;
        sv += mean[k];
        suu += k * k;
        suv += k * mean[k];
      }
      if (n < 0.5 * along) continue; // not mostly a thin band: not a line
      const slope = n * suu - su * su === 0 ? 0 : (n * suv - su * sv) / (n * suu - su * su);
      const icept = (sv - slope * su) / n,
        half = thickness / 2 + 1;
      const ink = (u: number, v: number) => v >= 0 && v < H && data[at(u, v)] === 1;
      for (let k = 0; k < along; k++) {
        const u = u0 + k,
          centre = icept + slope * k;
        const lo = Math.ceil(centre - half),
          hi = Math.floor(centre + half);
        let above = false,
          below = false;
        for (let r = 1; r <= reach; r++) {
          if (ink(u, lo - r)) above = true;
          if (ink(u, hi + r)) below = true;
        }
        if (above && below) continue; // a stroke crosses the line here
        for (let v = Math.max(lo, 0); v <= Math.min(hi, H - 1); v++) {
          if (data[at(u, v)] === 1) {
            data[at(u, v)] = 0;
            removed++;
          }
        }
      }
      break;
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

/**
 * Binary dilation (grow = true) or erosion by a disc-like element of radius `r`: r passes alternating a
 * 3x3 square and a 4-neighbour cross, whose composition approximates a disc (an octagon).
 */
export function morph(mask: Mask, r: number, grow: boolean): Mask {
  const { width: w, height: h } = mask;
  let src = mask.data;
  for (let pass = 0; pass < r; pass++) {
    const square = pass % 2 === 0;
    const out = new Uint8Array(src.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let v = src[y * w + x];
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            if ((dx === 0 && dy === 0) || (!square && dx !== 0 && dy !== 0)) continue;
            const yy = y + dy,
              xx = x + dx;
            const u = yy < 0 || yy >= h || xx < 0 || xx >= w ? 0 : src[yy * w + xx];
            v = grow ? v | u : v & u;
          }
        }
        out[y * w + x] = v;
      }
    }
    src = out;
  }
  return { width: w, height: h, data: src };
}
