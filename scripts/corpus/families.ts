/**
 * The corpus: MNIST *test* digits (never training digits) rendered in one distortion family each, plus
 * digits drawn with a mouse-like stroke generator on the page's pad. Picture n of family f depends only
 * on (seed, f, n), so any subset regenerates exactly.
 */
import { Rng } from '../../src/data/batches.ts';
import { defaults, render, type Rgb, type Scene } from './render.ts';
import { drawDigit } from './strokes.ts';

export interface Picture {
  family: string;
  name: string;
  label: number;
  bytes: Uint8Array;
}

export const FAMILIES = [
  'clean',
  'grey-paper',
  'colour',
  'light-gradient',
  'noise',
  'blur',
  'jpeg',
  'rotation',
  'scale-offcentre',
  'pen-width',
  'ruled-lines',
  'page-edge',
  'phone',
  'mouse',
  'dark-rules',
] as const;
export type Family = (typeof FAMILIES)[number];

const INKS: Rgb[] = [
  [0.08, 0.08, 0.1],
  [0.1, 0.15, 0.55],
  [0.05, 0.1, 0.35],
  [0.25, 0.25, 0.28],
  [0.55, 0.1, 0.1],
];

function tinted(rng: Rng, brightness: number): Rgb {
  const hue = rng.next() * 2 * Math.PI,
    sat = 0.05 + 0.2 * rng.next();
  return [0, 2.09, 4.19].map((o) => brightness * (1 - sat + sat * Math.cos(hue + o))) as Rgb;
}

/** The scene of one picture of family `f`. */
function scene(f: Family, rng: Rng): Scene {
  const u = (a: number, b: number) => a + (b - a) * rng.next();
  const base = { ...defaults, ink: INKS[rng.int(2)], format: (['png', 'jpeg', 'webp'] as const)[rng.int(3)], quality: 90 };
  let scale = u(6, 10),
    rotate = u(-3, 3);
  const s: Partial<Scene> = {};
  switch (f) {
    case 'clean':
      break;
    case 'grey-paper': {
      const p = u(0.45, 0.9);
      s.paper = [p, p, p];
      s.ink = [p * 0.15, p * 0.15, p * 0.17];
      s.noise = 0.02;
      break;
    }
    case 'colour':
      s.paper = tinted(rng, u(0.7, 1));
      s.ink = INKS[rng.int(INKS.length)];
      break;
    case 'light-gradient':
      s.light = u(0.3, 0.7);
      s.lightAngle = u(0, 360);
      s.shadow = rng.next() < 0.5 ? u(0.2, 0.45) : 0;
      break;
    case 'noise':
      s.noise = u(0.04, 0.12);
      s.paper = [0.9, 0.9, 0.9];
      break;
    case 'blur':
      s.blur = scale * u(0.15, 0.35);
      break;
    case 'jpeg':
      s.format = 'jpeg';
      s.quality = [15, 30, 50, 70, 90][rng.int(5)];
      s.noise = 0.02;
      s.paper = tinted(rng, 0.9);
      break;
    case 'rotation':
      rotate = u(-15, 15);
      break;
    case 'scale-offcentre':
      scale = u(4, 15);
      break;
    case 'pen-width':
      // a fine pen draws the whole digit thinly (eroded), a marker thickly (grown): about half and twice MNIST's width
      if (rng.int(2) === 0) s.grow = -Math.round(scale * u(0.35, 0.5));
      else {
        s.level = 0.25;
        s.grow = Math.round(scale * u(0.4, 0.8));
      }
      break;
    case 'ruled-lines':
      s.rules = scale * u(9, 14);
      s.ruleWidth = u(1, 3);
      s.ruleTilt = u(-1, 1);
      break;
    case 'page-edge':
      s.edge = u(0.08, 0.2);
      s.edgeSide = rng.int(4);
      s.edgeTilt = u(-8, 8);
      break;
    case 'phone':
      scale = u(5, 12);
      rotate = u(-10, 10);
      Object.assign(s, {
        paper: tinted(rng, u(0.7, 0.95)),
        ink: INKS[rng.int(3)],
        light: u(0.45, 0.8),
        lightAngle: u(0, 360),
        shadow: rng.next() < 0.3 ? u(0.15, 0.3) : 0,
        noise: u(0.02, 0.06),
        blur: scale * u(0.05, 0.2),
        format: 'jpeg',
        quality: [40, 60, 80][rng.int(3)],
      });
      if (rng.next() < 0.5) Object.assign(s, { rules: scale * u(10, 14), ruleWidth: u(1, 2.5), ruleTilt: u(-1, 1) });
      // biome-ignore lint/suspicious/noDuplicateElseIf: each call draws a new random number (half of the rest get a page edge)
      else if (rng.next() < 0.5) Object.assign(s, { edge: u(0.06, 0.14), edgeSide: rng.int(4), edgeTilt: u(-6, 6) });
      break;
    case 'mouse':
      break;
    case 'dark-rules': {
      // ruled lines in pencil grey to black ink, as dark as the digit's own pen
      const c = u(0.1, 0.45);
      Object.assign(s, { rules: scale * u(9, 14), ruleWidth: u(1, 3), ruleTilt: u(-1, 1), ruleColor: [c, c, c] });
      break;
    }
  }
  // canvas: the digit plus a margin; off-centre placement for the scale family on canvases up to 2,000 px
  const size = 28 * scale;
  const big = f === 'scale-offcentre';
  const width = Math.round(big ? Math.min(2000, size * u(1.6, 4)) : size * u(1.5, 2.2));
  const height = Math.round(big ? Math.min(2000, size * u(1.6, 4)) : size * u(1.5, 2.2));
  const margin = (s.edge ?? 0) > 0 ? 0.22 : 0.02;
  const x = u(margin * width - 3 * scale, width * (1 - margin) - 25 * scale);
  const y = u(margin * height - 3 * scale, height * (1 - margin) - 25 * scale);
  return {
    ...base,
    ...s,
    width,
    height,
    x: big ? x : (width - size) / 2 + u(-0.1, 0.1) * width,
    y: big ? y : (height - size) / 2 + u(-0.1, 0.1) * height,
    scale,
    rotate,
  };
}

/**
 * Picture n of family f. `test` holds MNIST's test images (784 floats each) and labels; each family draws
 * its own digits from them.
 */
export function picture(f: Family, n: number, seed: number, test: { images: Float32Array; labels: Uint8Array | number[] }): Picture {
  const rng = Rng.derive(seed, FAMILIES.indexOf(f), n);
  const k = rng.int(test.labels.length);
  const label = test.labels[k];
  if (f === 'mouse') {
    const digit = rng.int(10);
    return { family: f, name: `${f}-${String(n).padStart(4, '0')}-${digit}.png`, label: digit, bytes: drawDigit(digit, rng) };
  }
  const s = scene(f, rng);
  const bytes = render(test.images.subarray(k * 784, (k + 1) * 784), s, rng);
  const ext = s.format === 'jpeg' ? 'jpg' : s.format;
  return { family: f, name: `${f}-${String(n).padStart(4, '0')}-t${k}-${label}.${ext}`, label, bytes };
}
