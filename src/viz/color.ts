/**
 * Numbers → colours, with no drawing: the colour maps every figure uses, and `raster`, which turns a grid
 * of values into RGBA bytes with each value a crisp square block (no smoothing between weights or pixels).
 */

export type Rgb = readonly [number, number, number];

/** ColorBrewer RdBu, reversed: strong blue (-1) → near-white (0) → strong red (+1). Cynthia Brewer, colorbrewer2.org. */
const RED_BLUE: readonly Rgb[] = [
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
];

/** ColorBrewer Blues: near-white (0) → dark blue (1). */
const BLUES: readonly Rgb[] = [
  [247, 251, 255],
  [222, 235, 247],
  [198, 219, 239],
  [158, 202, 225],
  [107, 174, 214],
  [66, 146, 198],
  [33, 113, 181],
  [8, 81, 156],
  [8, 48, 107],
];

/** matplotlib's viridis at nine evenly spaced points: dark purple (0) → yellow (1), perceptually uniform. */
const VIRIDIS: readonly Rgb[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** Piecewise-linear interpolation between evenly spaced colour stops; t is clamped to [0,1]. */
export function interpolate(stops: readonly Rgb[], t: number): Rgb {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  const f = u - i;
  const [a, b] = [stops[i], stops[i + 1]];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Diverging map centered at zero: v = -scale is blue, 0 is white, +scale is red (values beyond saturate). */
export function diverging(v: number, scale: number): Rgb {
  return interpolate(RED_BLUE, (v / scale + 1) / 2);
}

/** Sequential blues for counts, t in [0,1]. */
export function blues(t: number): Rgb {
  return interpolate(BLUES, t);
}

/** Sequential viridis for activations, t in [0,1]. */
export function viridis(t: number): Rgb {
  return interpolate(VIRIDIS, t);
}

/** Ink for digits as the lesson drew them: 0 (background) is white, 1 (ink) is black. */
export function ink(t: number): Rgb {
  const g = 255 * (1 - Math.min(1, Math.max(0, t)));
  return [g, g, g];
}

/** The largest |v|, so that a diverging map is symmetric around zero; 1 when every value is 0. */
export function symmetricScale(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m > 0 ? m : 1;
}

/** The largest value, or 1 when none is positive (for activations after ReLU, which are ≥ 0). */
export function positiveMax(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, values[i]);
  return m > 0 ? m : 1;
}

/** Relative luminance (ITU-R BT.709 weights), 0 = black, 1 = white: picks dark or light text on a cell. */
export function luminance([r, g, b]: Rgb): number {
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}

export function css([r, g, b]: Rgb): string {
  return `rgb(${Math.round(r)},${Math.round(g)},${Math.round(b)})`;
}

/**
 * A `width`x`height` grid of values (row-major) → RGBA bytes of a (width*scale)x(height*scale) image in
 * which every value is a scale x scale block of `color(value)`.
 */
export function raster(values: ArrayLike<number>, width: number, height: number, scale: number, color: (v: number) => Rgb): Uint8ClampedArray {
  if (values.length !== width * height) throw new Error(`raster: ${values.length} values for ${width}x${height}`);
  const outW = width * scale;
  const out = new Uint8ClampedArray(outW * height * scale * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = color(values[y * width + x]);
      for (let dy = 0; dy < scale; dy++) {
        let o = ((y * scale + dy) * outW + x * scale) * 4;
        for (let dx = 0; dx < scale; dx++, o += 4) {
          out[o] = r;
          out[o + 1] = g;
          out[o + 2] = b;
          out[o + 3] = 255;
        }
      }
    }
  }
  return out;
}
