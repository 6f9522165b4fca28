/**
 * A picture of one digit → what the network expects: 28x28, white ink on black, the ink scaled into a
 * 20x20 box and centred by its centre of mass (LeCun, Cortes & Burges, "The MNIST database of handwritten
 * digits"). Photos and scans first get the paper taken away (paper.ts). Pure: no Node, no DOM, so the CLI,
 * the server and the web page run the same steps.
 *
 *   GrayImage
 *   1 shrink      longer side ≤ 800 px (area average): everything after is linear in pixels; 12 MP in < 300 ms
 *   2 polarity    the median pixel is paper (a digit covers a small part of its picture); the ink is the far extreme
 *   3 background  local paper level on a coarse grid, divided out: uneven light, shadow, grey or tinted paper
 *   4 threshold   Otsu (1979) on the ink contrast, 3x3-smoothed against sensor noise
 *   5 lines       (optional) ruled lines and straight page edges removed where no stroke crosses them
 *   6 components  the digit is the largest 8-connected component off the border, plus the parts near it;
 *                 dust, the page border and other digits side by side are left out (and reported)
 *   7 stroke      the ink is dilated or eroded (grey-level) until its width matches MNIST's
 *   8 MNIST       crop, 20x20 box (area average), centre of mass at the centre of 28x28
 */
import { centerOfMass, centeringOffset, crop, fitInBox, inkBBox, resizeArea, scaleToMax, shift, type Box, type GrayImage } from './image.ts';
import {
  binarize,
  components,
  estimateBackground,
  inkContrast,
  isDarkInk,
  otsu,
  quantile,
  removeLines,
  strokeWidth,
  type Component,
  type Mask,
} from './paper.ts';
import { box3, greyMorph, within, hysteresis, crop01, scaleBox } from './morph.ts';

/** What the classifier sees, and how the picture was read. */
export interface MnistDigit {
  /** 28*28 values, row-major, white ink (1) on black (0), like an MNIST image divided by 255. */
  pixels: Float32Array;
  /** True when the picture had a light background (dark ink on paper) and was inverted. */
  inverted: boolean;
  /** True when no ink was found; `pixels` is then all zeros. */
  blank: boolean;
  /** Things a person should know before trusting the answer (several digits, ink cut off by the edge). */
  warnings: string[];
  diagnostics: Diagnostics;
}

/** Measurements of each step, for `--json`, the API and tests. */
export interface Diagnostics {
  /** Size the steps ran at (after step 1) and its scale relative to the picture. */
  working: { width: number; height: number; scale: number };
  /** Otsu's threshold on the ink contrast (0 = paper, 1 = black ink). */
  threshold: number;
  /** Ink pixels removed as straight lines. */
  linePixels: number;
  components: { found: number; kept: number; dust: number; border: number; sideBySide: number };
  /** Stroke width of the digit in the 20x20 box, as found and after step 7 (MNIST: `MNIST_STROKE_WIDTH`). */
  stroke: { measured: number; after: number; change: number };
  /** Where the digit is, in the picture's pixels. */
  box: Box | null;
}

/** The knobs of `toMnist`. Defaults in `PREPROCESS_DEFAULTS`. */
export interface PreprocessConfig {
  /** Side of the output field. MNIST: 28. */
  size: number;
  /** Side of the box the ink is scaled into (the longer side of the ink becomes this). MNIST: 20. */
  box: number;
  /** Unused since the polarity is found by `isDarkInk`; kept so that older configs still type-check. */
  invertAbove: number;
  /** After stretching the ink to [0,1], values below this are set to 0 (paper texture, JPEG noise). */
  threshold: number;
  /** If the ink differs from the paper by less than this (in [0,1]), the picture is blank. */
  minContrast: number;
  /** Longer side the picture is shrunk to first (step 1). */
  workingSide: number;
  /** Step 7 on or off. */
  normalizeStroke: boolean;
  /**
   * Step 5 on or off. Off by default, as measured on the corpus (280 pictures): on, it cost two pictures
   * (page-edge 100% → 90%: pieces of a cut page border were kept as parts of the digit) and gained none,
   * because ruled lines printed in light blue fall below Otsu's threshold and page borders touch the
   * picture's edge, which step 6 already drops. It is for dark ruled paper.
   */
  removeLines: boolean;
}

export const PREPROCESS_DEFAULTS: Readonly<PreprocessConfig> = {
  size: 28,
  box: 20,
  invertAbove: 0.5,
  threshold: 0.1,
  minContrast: 0.15,
  workingSide: 800,
  normalizeStroke: true,
  removeLines: false,
};

/**
 * MNIST's typical stroke width in its 20x20 box, by `strokeWidth` (2·area/perimeter) of the digits
 * binarised at 0.5: median 1.98 px over the first 5,000 training images (10th–90th percentile 1.39–2.83).
 */
export const MNIST_STROKE_WIDTH = 1.98;
/**
 * Widths in this range are left alone: MNIST's own digits span it (it holds 93% of the first 5,000 training digits; 10th–90th
 * percentile 1.39–2.83), so the network has seen plenty of them. Outside it, step 7 brings the width to
 * the median. A pen half or twice as wide as MNIST's falls outside.
 */
export const MNIST_STROKE_RANGE = [1.2, 3.2] as const;
/** Resolution of step 7, in pixels per pixel of the 20x20 box (at least). */
const STROKE_SCALE = 4;

/** Any grayscale picture of one digit → an MNIST-style 28x28 digit. A picture with no ink gives `blank: true`. */
export function toMnist(picture: GrayImage, config: Partial<PreprocessConfig> = {}): MnistDigit {
  const cfg = { ...PREPROCESS_DEFAULTS, ...config };
  const diagnostics: Diagnostics = {
    working: { width: picture.width, height: picture.height, scale: 1 },
    threshold: 0,
    linePixels: 0,
    components: { found: 0, kept: 0, dust: 0, border: 0, sideBySide: 0 },
    stroke: { measured: 0, after: 0, change: 0 },
    box: null,
  };
  const warnings: string[] = [];
  const blank = (inverted: boolean): MnistDigit => ({ pixels: new Float32Array(cfg.size * cfg.size), inverted, blank: true, warnings, diagnostics });
  if (picture.width === 0 || picture.height === 0) return blank(false);

  // 1 shrink
  const long = Math.max(picture.width, picture.height);
  const scale = long > cfg.workingSide ? cfg.workingSide / long : 1;
  const img = scale < 1 ? resizeArea(picture, Math.max(1, Math.round(picture.width * scale)), Math.max(1, Math.round(picture.height * scale))) : picture;
  const { width: w, height: h } = img;
  diagnostics.working = { width: w, height: h, scale: w / picture.width };

  // 2 polarity, 3 background
  const darkInk = isDarkInk(img.data);
  if (quantile(img.data, 0.999) - quantile(img.data, 0.001) < cfg.minContrast) return blank(darkInk); // one colour
  const cell = Math.max(8, Math.round(Math.max(w, h) / 24));
  const ink = inkContrast(img, estimateBackground(img, cell, darkInk), darkInk);

  // 4 threshold: Otsu over the pixels that are not plain paper (a small digit on a big page is < 0.1% of
  // the pixels, and Otsu on the whole histogram would split the paper's noise instead)
  const smooth = Math.max(w, h) >= 100 ? box3(ink) : ink; // small pictures (MNIST's own 28x28) are not noisy
  const notPaper = smooth.data.filter((v) => v > 0.06);
  if (notPaper.length === 0) return blank(darkInk);
  const threshold = Math.max(otsu({ width: notPaper.length, height: 1, data: notPaper }), cfg.minContrast);
  diagnostics.threshold = threshold;
  const mask = binarize(smooth, threshold);

  // 5 lines (off by default: see PreprocessConfig.removeLines)
  if (cfg.removeLines) diagnostics.linePixels = removeLines(mask, Math.max(3, Math.round(Math.min(w, h) / 40)));

  // 6 components
  const picked = pickDigit(mask, diagnostics, warnings);
  if (!picked) return blank(darkInk);
  const { keep, bbox } = picked;

  // the ink the network sees: the soft contrast (anti-aliased edges, as MNIST's) of the kept parts and of
  // the fainter ink connected to them (hysteresis, as in Canny 1986: down to a third of the threshold, or cfg.threshold if lower),
  // stretched so the ink's own strength (pencil or marker) becomes 1
  // (only within a few pixels of the kept ink: a shadow next to a stroke must not be grown into), and
  // measured from the paper's own residual level around the digit (what background removal left)
  const pad = 2 + Math.round(Math.max(bbox.width, bbox.height) / 8);
  const area = { x: Math.max(0, bbox.x - pad), y: Math.max(0, bbox.y - pad), width: 0, height: 0 };
  area.width = Math.min(w, bbox.x + bbox.width + pad) - area.x;
  area.height = Math.min(h, bbox.y + bbox.height + pad) - area.y;
  // everything from here on runs on the digit's area only
  const near = within(crop01(keep, area), Math.max(1, Math.round(Math.max(bbox.width, bbox.height) / 40)));
  const grown = crop01(hysteresis(keep, smooth, Math.min(threshold / 3, cfg.threshold)), area);
  const kept = crop01(keep, area),
    local = crop(ink, area);
  const inside: number[] = [],
    around: number[] = [];
  for (let i = 0; i < local.data.length; i++) {
    if (kept.data[i]) inside.push(local.data[i]);
    else if (!near.data[i]) around.push(local.data[i]);
  }
  inside.sort((a, b) => a - b);
  around.sort((a, b) => a - b);
  const strength = inside[Math.floor(0.9 * (inside.length - 1))];
  const paper = around.length > 0 ? around[around.length >> 1] : 0;
  if (!(strength - paper >= cfg.minContrast)) return blank(darkInk);
  let digit: GrayImage = { width: area.width, height: area.height, data: new Float32Array(local.data.length) };
  for (let i = 0; i < digit.data.length; i++) {
    const v = grown.data[i] && near.data[i] ? Math.min(Math.max(local.data[i] - paper, 0) / (strength - paper), 1) : 0;
    digit.data[i] = v < cfg.threshold ? 0 : v;
  }
  diagnostics.box = scaleBox(bbox, 1 / diagnostics.working.scale);
  if (bbox.x === 0 || bbox.y === 0 || bbox.x + bbox.width === w || bbox.y + bbox.height === h) {
    warnings.push('the digit touches the edge of the picture and may be cut off');
  }

  // 7 stroke width: at a fixed scale of STROKE_SCALE pixels per pixel of the 20x20 box, so that one pass of
  // dilation or erosion changes the width by 2/STROKE_SCALE box pixels whatever the picture's size
  // (small digits are enlarged by a whole factor, which replicates pixels and so changes nothing downstream)
  const longSide = Math.max(bbox.width, bbox.height),
    target = STROKE_SCALE * cfg.box;
  const s7 = longSide < target ? Math.ceil(target / longSide) : target / longSide;
  digit = resizeArea(digit, Math.max(1, Math.round(digit.width * s7)), Math.max(1, Math.round(digit.height * s7)));
  const perBox = (longSide * s7) / cfg.box; // pixels of `digit` per pixel of the 20x20 box
  const measured = strokeWidth(binarize(digit, 0.5)) / perBox;
  diagnostics.stroke = { measured, after: measured, change: 0 };
  if (cfg.normalizeStroke && measured > 0 && (measured < MNIST_STROKE_RANGE[0] || measured > MNIST_STROKE_RANGE[1])) {
    const r = Math.round(((MNIST_STROKE_WIDTH - measured) * perBox) / 2); // dilating by r adds about 2r
    if (r !== 0) {
      digit = greyMorph(digit, Math.abs(r), r > 0);
      diagnostics.stroke = { measured, after: strokeWidth(binarize(digit, 0.5)) / perBox, change: (2 * r) / perBox };
    }
  }
  return { ...mnistSteps(digit, cfg), inverted: darkInk, warnings, diagnostics };
}

/**
 * Step 8, the MNIST steps on a picture that is already white ink on black with the paper at 0: crop to the
 * ink, area-average into the box keeping the aspect ratio (re-stretched, since averaging fades thin
 * strokes), and paste into the field with the centre of mass at its centre.
 */
export function mnistSteps(ink: GrayImage, config: Partial<PreprocessConfig> = {}): { pixels: Float32Array; blank: boolean } {
  const cfg = { ...PREPROCESS_DEFAULTS, ...config };
  const none = { pixels: new Float32Array(cfg.size * cfg.size), blank: true };
  const bbox = inkBBox(ink);
  if (!bbox) return none;
  const fit = fitInBox(bbox.width, bbox.height, cfg.box);
  const boxed = scaleToMax(resizeArea(crop(ink, bbox), fit.width, fit.height)); // [h≤20, w≤20]
  const com = centerOfMass(boxed);
  if (!com) return none;
  const { dx, dy } = centeringOffset(boxed, com, cfg.size);
  return { pixels: shift(boxed, cfg.size, dx, dy).data, blank: false }; // [28, 28] in [0,1]
}

/**
 * Which components are the digit. Candidates are the components of at least `dust` pixels that do not touch
 * the picture's border (the page edge, a table, a finger do); if every one touches it, those are candidates.
 * The digit is the largest candidate. Another candidate at least 40% as large and half as tall that does not
 * overlap it left-right is a second digit side by side: it is left out and reported. Smaller candidates are
 * kept when they lie within half the digit's size of it (the bar of a 5, the dot of a broken 4) and are not dust.
 */
function pickDigit(mask: Mask, diagnostics: Diagnostics, warnings: string[]): { keep: Mask; bbox: Box } | null {
  const { labels, list } = components(mask);
  const total = mask.width * mask.height;
  const dust = Math.max(3, Math.round(total * 3e-5));
  diagnostics.components.found = list.length;
  const big = list.filter((c) => c.area >= dust);
  diagnostics.components.dust = list.length - big.length;
  const inside = big.filter((c) => !c.touchesBorder);
  diagnostics.components.border = big.length - inside.length;
  const candidates = inside.length > 0 ? inside : big;
  if (candidates.length === 0) return null;
  const main = candidates.reduce((a, b) => (b.area > a.area ? b : a));
  const mh = main.y1 - main.y0 + 1,
    mw = main.x1 - main.x0 + 1,
    reach = 0.5 * Math.max(mh, mw);
  const kept: Component[] = [main];
  let sideBySide = 0;
  for (const c of candidates) {
    if (c === main) continue;
    const ch = c.y1 - c.y0 + 1;
    const xOverlap = Math.min(c.x1, main.x1) - Math.max(c.x0, main.x0);
    const yOverlap = Math.min(c.y1, main.y1) - Math.max(c.y0, main.y0);
    // a second digit: as large, as tall, beside it (not above), with a gap between them; the pieces of one
    // broken digit are close together, so a narrow gap only warns and the piece is kept
    if (c.area >= 0.4 * main.area && ch >= 0.6 * mh && yOverlap > 0.5 * Math.min(ch, mh) && -xOverlap > 0.1 * mh) {
      sideBySide++;
      if (-xOverlap > 0.25 * mh) continue;
    }
    const gapX = Math.max(main.x0 - c.x1, c.x0 - main.x1, 0),
      gapY = Math.max(main.y0 - c.y1, c.y0 - main.y1, 0);
    if (c.area >= 0.03 * main.area && Math.max(gapX, gapY) <= reach) kept.push(c);
  }
  diagnostics.components.kept = kept.length;
  diagnostics.components.sideBySide = sideBySide;
  if (sideBySide > 0) {
    warnings.push(`the picture seems to hold ${sideBySide + 1} digits side by side; only the largest was classified, ` + 'so crop the picture to one digit');
  }
  const keepLabel = new Uint8Array(list.length + 1);
  for (const c of kept) keepLabel[c.label + 1] = 1;
  const keep: Mask = { width: mask.width, height: mask.height, data: new Uint8Array(total) };
  let x0 = mask.width,
    y0 = mask.height,
    x1 = 0,
    y1 = 0;
  for (const c of kept) {
    x0 = Math.min(x0, c.x0);
    y0 = Math.min(y0, c.y0);
    x1 = Math.max(x1, c.x1);
    y1 = Math.max(y1, c.y1);
  }
  for (let i = 0; i < total; i++) keep.data[i] = keepLabel[labels[i]];
  return { keep, bbox: { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 } };
}
