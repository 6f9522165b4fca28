/**
 * Renders one MNIST test digit the way a phone or a scanner would deliver it: ink on paper of some grey
 * or colour, under uneven light, with noise, blur, rotation, a ruled line or the page edge in view, then
 * encoded as PNG, JPEG or WebP. Everything is drawn from the Rng it is given, so a seed gives the same
 * pictures on every machine (up to the JPEG/WebP encoder's own rounding).
 */
import { createCanvas, ImageData } from '@napi-rs/canvas';
import type { Rng } from '../../src/data/batches.ts';

export type Rgb = [number, number, number];

/** Everything one picture is made of; `defaults` below is a clean black pen on white paper. */
export interface Scene {
  /** Canvas size in pixels. */
  width: number;
  height: number;
  /** Pixels per MNIST pixel (the digit is 28·scale across, its ink about 20·scale). */
  scale: number;
  /** Top-left of the digit's 28x28 field on the canvas. */
  x: number;
  y: number;
  /** Degrees, clockwise. */
  rotate: number;
  /** Pen: the MNIST field is cut at this level (lower = thicker), then grown by `grow` canvas pixels (< 0: thinned). */
  level: number;
  grow: number;
  paper: Rgb;
  /** Reflectance of the ink (0 = black). */
  ink: Rgb;
  /** Light falls off linearly to `light` (1 = even) in direction `lightAngle`; a shadow darkens a half-plane. */
  light: number;
  lightAngle: number;
  shadow: number;
  /** Horizontal ruled lines: spacing in pixels (0 = none), thickness, tilt in degrees, colour. */
  rules: number;
  ruleWidth: number;
  ruleTilt: number;
  ruleColor: Rgb;
  /** Page edge: the fraction of the canvas covered by the table beyond the page (0 = none) and its side. */
  edge: number;
  edgeSide: number;
  edgeTilt: number;
  /** Gaussian blur sigma in pixels; Gaussian noise sigma in [0,1] units. */
  blur: number;
  noise: number;
  format: 'png' | 'jpeg' | 'webp';
  quality: number;
}

export const defaults: Omit<Scene, 'width' | 'height' | 'x' | 'y'> = {
  scale: 8,
  rotate: 0,
  level: 0.5,
  grow: 0,
  paper: [1, 1, 1],
  ink: [0.08, 0.08, 0.1],
  light: 1,
  lightAngle: 0,
  shadow: 0,
  rules: 0,
  ruleWidth: 2,
  ruleTilt: 0,
  ruleColor: [0.55, 0.65, 0.85],
  edge: 0,
  edgeSide: 0,
  edgeTilt: 0,
  blur: 0,
  noise: 0,
  format: 'png',
  quality: 92,
};

/** Bilinear sample of a 28x28 field (0 outside). */
function sample(d: Float32Array, fx: number, fy: number): number {
  const x0 = Math.floor(fx),
    y0 = Math.floor(fy),
    ax = fx - x0,
    ay = fy - y0;
  const p = (y: number, x: number) => (x < 0 || x > 27 || y < 0 || y > 27 ? 0 : d[y * 28 + x]);
  return (1 - ay) * ((1 - ax) * p(y0, x0) + ax * p(y0, x0 + 1)) + ay * ((1 - ax) * p(y0 + 1, x0) + ax * p(y0 + 1, x0 + 1));
}

/** Ink coverage in [0,1] per canvas pixel: the digit field, rotated and scaled, cut at the pen's level (anti-aliased). */
function inkCoverage(digit: Float32Array, s: Scene): Float32Array {
  const { width: w, height: h, scale } = s;
  const cov = new Float32Array(w * h);
  const t = (s.rotate * Math.PI) / 180,
    cos = Math.cos(t),
    sin = Math.sin(t);
  const cx = s.x + 14 * scale,
    cy = s.y + 14 * scale,
    reach = 21 * scale + s.grow + 2;
  for (let y = Math.max(0, Math.floor(cy - reach)); y < Math.min(h, Math.ceil(cy + reach)); y++) {
    for (let x = Math.max(0, Math.floor(cx - reach)); x < Math.min(w, Math.ceil(cx + reach)); x++) {
      const dx = x + 0.5 - cx,
        dy = y + 0.5 - cy; // inverse rotation into the digit's frame
      const fx = (cos * dx + sin * dy) / scale + 13.5,
        fy = (-sin * dx + cos * dy) / scale + 13.5;
      const v = sample(digit, fx, fy);
      cov[y * w + x] = Math.min(1, Math.max(0, 0.5 + (v - s.level) * scale * 0.8));
    }
  }
  if (s.grow < 0) return invert(maxFilter(invert(cov), w, h, -s.grow)); // erosion = dilation of the paper
  return s.grow > 0 ? maxFilter(cov, w, h, s.grow) : cov;
}

function invert(a: Float32Array): Float32Array {
  return a.map((v) => 1 - v);
}

/** Separable max filter of radius r (a square pen tip r pixels wider on each side). */
function maxFilter(src: Float32Array, w: number, h: number, r: number): Float32Array {
  const tmp = new Float32Array(src.length),
    out = new Float32Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let m = 0;
      for (let k = Math.max(0, x - r); k <= Math.min(w - 1, x + r); k++) m = Math.max(m, src[y * w + k]);
      tmp[y * w + x] = m;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let m = 0;
      for (let k = Math.max(0, y - r); k <= Math.min(h - 1, y + r); k++) m = Math.max(m, tmp[k * w + x]);
      out[y * w + x] = m;
    }
  }
  return out;
}

/** Separable Gaussian blur of one channel, in place (kernel cut at 3 sigma, edges clamped). */
function blurChannel(c: Float32Array, w: number, h: number, sigma: number): void {
  const r = Math.ceil(3 * sigma),
    k = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  const tmp = new Float32Array(c.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let i = -r; i <= r; i++) v += k[i + r] * c[y * w + Math.min(w - 1, Math.max(0, x + i))];
      tmp[y * w + x] = v;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let i = -r; i <= r; i++) v += k[i + r] * tmp[Math.min(h - 1, Math.max(0, y + i)) * w + x];
      c[y * w + x] = v;
    }
  }
}

/** The scene as encoded bytes. */
export function render(digit: Float32Array, s: Scene, rng: Rng): Uint8Array {
  const { width: w, height: h } = s;
  const cov = inkCoverage(digit, s);
  const ch = [new Float32Array(w * h), new Float32Array(w * h), new Float32Array(w * h)];
  const la = (s.lightAngle * Math.PI) / 180,
    lx = Math.cos(la),
    ly = Math.sin(la);
  const diag = Math.hypot(w, h);
  const rt = Math.tan((s.ruleTilt * Math.PI) / 180),
    et = Math.tan((s.edgeTilt * Math.PI) / 180);
  const ruleOffset = rng.next() * Math.max(s.rules, 1);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      // light: a linear falloff across the canvas, and a soft-edged shadow over the half-plane beyond the centre
      const along = ((x - w / 2) * lx + (y - h / 2) * ly) / diag + 0.5; // ~[0,1]
      let light = 1 - (1 - s.light) * along;
      if (s.shadow > 0) light *= 1 - s.shadow * Math.min(1, Math.max(0, (along - 0.55) * 12));
      // the table beyond the page edge: dark, slightly textured
      let table = 0;
      if (s.edge > 0) {
        const u = s.edgeSide % 2 === 0 ? x / w : y / h,
          v = s.edgeSide % 2 === 0 ? y / h : x / w;
        const pos = (s.edgeSide < 2 ? u : 1 - u) + et * (v - 0.5);
        table = Math.min(1, Math.max(0, (s.edge - pos) * Math.min(w, h) * 0.7 + 0.5));
      }
      // ruled lines
      let rule = 0;
      if (s.rules > 0) {
        const yy = y - rt * (x - w / 2) - ruleOffset;
        const d = Math.abs(yy - Math.round(yy / s.rules) * s.rules);
        rule = Math.min(1, Math.max(0, s.ruleWidth / 2 + 0.5 - d));
      }
      const c = cov[i];
      for (let k = 0; k < 3; k++) {
        let v = s.paper[k] * (1 - rule * (1 - s.ruleColor[k])) * (1 - c * (1 - s.ink[k]));
        v = (1 - table) * v + table * (0.22 + 0.08 * Math.sin(x * 0.05 + y * 0.031));
        ch[k][i] = v * light;
      }
    }
  }
  if (s.blur > 0) for (const c of ch) blurChannel(c, w, h, s.blur);
  const rgba = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    for (let k = 0; k < 3; k++) rgba[4 * i + k] = Math.round(255 * (ch[k][i] + (s.noise > 0 ? s.noise * rng.normal() : 0)));
    rgba[4 * i + 3] = 255;
  }
  const canvas = createCanvas(w, h);
  canvas.getContext('2d').putImageData(new ImageData(rgba, w, h), 0, 0);
  if (s.format === 'png') return canvas.toBuffer('image/png');
  return s.format === 'jpeg' ? canvas.toBuffer('image/jpeg', s.quality) : canvas.toBuffer('image/webp', s.quality);
}
