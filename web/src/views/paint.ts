/**
 * One visual config for every view: colour maps and a helper that paints a grid of values into a
 * canvas at one canvas pixel per value (CSS scales it up with `image-rendering: pixelated`).
 */

type Rgb = [number, number, number];

/** Interpolates between colour stops placed evenly over [0,1]. */
function ramp(stops: Rgb[]): (t: number) => Rgb {
  return (t) => {
    const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
    const i = Math.min(Math.floor(x), stops.length - 2);
    const f = x - i;
    const a = stops[i],
      b = stops[i + 1];
    return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
  };
}

/** Activations (≥ 0): black → violet → orange → pale yellow, an "inferno"-like sequential map. */
export const heat = ramp([
  [0, 0, 4],
  [66, 10, 104],
  [147, 38, 103],
  [221, 81, 58],
  [252, 165, 10],
  [252, 255, 164],
]);

/** Signed weights: blue for negative, dark at zero, orange for positive. */
const diverging = ramp([
  [96, 165, 250],
  [30, 64, 140],
  [16, 18, 26],
  [160, 72, 16],
  [251, 146, 60],
]);
export const signed = (t: number): Rgb => diverging((t + 1) / 2);

/** The network's input: plain grayscale, as MNIST. */
export const gray = (t: number): Rgb => {
  const v = Math.min(Math.max(t, 0), 1) * 255;
  return [v, v, v];
};

/**
 * Paints `values` (row-major `rows` x `cols`, read with `at(r, c)`) into `canvas`, scaled by `scale`
 * (value / scale goes to the colour map). Resizes the canvas to cols x rows if needed.
 */
export function paintGrid(
  canvas: HTMLCanvasElement,
  rows: number,
  cols: number,
  at: (r: number, c: number) => number,
  color: (t: number) => Rgb,
  scale: number,
): void {
  if (canvas.width !== cols) canvas.width = cols;
  if (canvas.height !== rows) canvas.height = rows;
  const ctx = canvas.getContext('2d')!;
  const image = ctx.createImageData(cols, rows);
  const s = scale > 0 ? 1 / scale : 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const [red, green, blue] = color(at(r, c) * s);
      const o = 4 * (r * cols + c);
      image.data[o] = red;
      image.data[o + 1] = green;
      image.data[o + 2] = blue;
      image.data[o + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}

export function maxOf(values: ArrayLike<number>, abs = false): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = abs ? Math.abs(values[i]) : values[i];
    if (v > m) m = v;
  }
  return m;
}

/** `el('div', 'class-name', 'text')`: a small DOM helper so views read as layout, not plumbing. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An RGB image (NHWC, values in [0,1]) at one canvas pixel per pixel. */
export function paintRgb(canvas: HTMLCanvasElement, pixels: Float32Array, h: number, w: number): void {
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d')!;
  const image = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let c = 0; c < 3; c++) image.data[4 * i + c] = pixels[3 * i + c] * 255;
    image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}
