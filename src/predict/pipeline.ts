/**
 * A picture of one digit → what the network expects: 28x28, white ink on black, the ink scaled into a
 * 20x20 box and centred by its centre of mass (LeCun, Cortes & Burges, "The MNIST database of handwritten
 * digits"). Photos and scans first get the paper taken away (paper.ts). Pure: no Node, no DOM, so the CLI,
 * the server and the web page run the same steps.
 *
 *   GrayImage
 *   1 shrink      longer side ≤ 800 px (area average): everything after is linear in pixels
 *   2 polarity    dark ink on paper or light ink on a dark ground: whichever leaves less of the picture as ink
 *   3 background  local paper level on a coarse grid, divided out: uneven light, shadow, grey or tinted paper
 *   4 threshold   Otsu (1979) on the ink contrast, 3x3-smoothed against sensor noise
 *   5 lines       ruled lines (thinner than the pen) removed where no stroke crosses them
 *   6 components  the digit is the largest 8-connected component off the border, plus the parts near it;
 *                 dust, the page border and other digits side by side are left out (and reported)
 *   7 stroke      the ink is dilated or eroded (grey-level) until its width matches MNIST's
 *   deskew        shear by image moments so the digit's principal axis is vertical
 *   8 MNIST       the pen's edge (half the ink's strength) into the 20x20 box, anti-aliased as MNIST's;
 *                 centre of mass at the centre of 28x28
 */
import {
  centerOfMass,
  centeringOffset,
  crop,
  deskew,
  fitInBox,
  inkBBox,
  resampleArea,
  resizeArea,
  scaleToMax,
  shift,
  type Box,
  type GrayImage,
} from './image.ts';
import { binarize, cellHistograms, estimateBackground, inkContrast, isDarkInk, otsu, quantile, quantiles, type Mask } from './paper.ts';
import { components, removeLines, strokeWidth, type Component } from './components.ts';
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
  /** Milliseconds (wall time) spent in each step, for `convlab predict --timing`. */
  ms: { shrink: number; background: number; threshold: number; components: number; ink: number; stroke: number; mnist: number };
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
   * Step 5 on or off. On: ruled lines are found by projection (components.ts), and only lines thinner than
   * the pen that run from edge to edge are removed. Measured on the corpus (600 pictures, seed 17) it takes
   * the family with dark ruled lines from 77.5% to 95% (97.5% → 98.3% overall; seed 18: 98.2% → 98.7%) and
   * costs nothing elsewhere, nor on MNIST's test set. (The earlier version took any long component for a
   * line, cut pieces out of page borders and cost 2 pictures, so it was off.)
   */
  removeLines: boolean;
  /**
   * Deskew by image moments (`deskew`) before step 8. On: measured on the corpus (1,200 pictures, seeds 17
   * and 18) it read 4 more pictures and none fewer (98.3% → 98.5%, 98.7% → 99.2%), and it leaves MNIST's
   * own test set as it was (99.17% through `toMnist` either way). MNIST itself is not deskewed; the network
   * learnt slanted digits, and straightening a slanted one costs nothing it can see.
   */
  deskew: boolean;
}

export const PREPROCESS_DEFAULTS: Readonly<PreprocessConfig> = {
  size: 28,
  box: 20,
  invertAbove: 0.5,
  threshold: 0.1,
  minContrast: 0.15,
  workingSide: 800,
  normalizeStroke: true,
  removeLines: true,
  deskew: true,
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
    ms: { shrink: 0, background: 0, threshold: 0, components: 0, ink: 0, stroke: 0, mnist: 0 },
  };
  let clock = performance.now();
  const lap = (step: keyof Diagnostics['ms']) => {
    const now = performance.now();
    diagnostics.ms[step] = now - clock;
    clock = now;
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

  lap('shrink');

  // 2 polarity, 3 background (one pass of per-cell histograms serves both)
  const [lo, hi] = quantiles(img.data, [0.001, 0.999]);
  const cell = Math.max(8, Math.round(Math.max(w, h) / 24));
  const cells = cellHistograms(img, cell);
  const darkInk = isDarkInk(cells);
  if (hi - lo < cfg.minContrast) return blank(darkInk); // one colour
  const ink = inkContrast(img, estimateBackground(img, cell, darkInk, cells), darkInk);

  lap('background');

  // 4 threshold: Otsu over the pixels that are not plain paper (a small digit on a big page is < 0.1% of
  // the pixels, and Otsu on the whole histogram would split the paper's noise instead)
  const smooth = Math.max(w, h) >= 100 ? box3(ink) : ink; // small pictures (MNIST's own 28x28) are not noisy
  if (!smooth.data.some((v) => v > 0.06)) return blank(darkInk);
  const threshold = Math.max(otsu(smooth, 256, 0.06), cfg.minContrast);
  diagnostics.threshold = threshold;
  const mask = binarize(smooth, threshold);

  // 5 lines
  if (cfg.removeLines) diagnostics.linePixels = removeLines(mask, Math.max(3, Math.round(Math.min(w, h) / 40)));

  lap('threshold');

  // 6 components
  const picked = pickDigit(mask, diagnostics, warnings);
  if (!picked) return blank(darkInk);
  const { keep, bbox } = picked;
  lap('components');

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
  const kept = crop01(keep, area),
    local = crop(ink, area);
  const near = within(kept, Math.max(1, Math.round(Math.max(bbox.width, bbox.height) / 40)));
  const grown = hysteresis(kept, crop(smooth, area), Math.min(threshold / 3, cfg.threshold));
  const inside = new Float32Array(local.data.length),
    around = new Float32Array(local.data.length);
  let nIn = 0,
    nAround = 0;
  for (let i = 0; i < local.data.length; i++) {
    if (kept.data[i]) inside[nIn++] = local.data[i];
    else if (!near.data[i]) around[nAround++] = local.data[i];
  }
  const strength = quantile(inside.subarray(0, nIn), 0.9);
  const paper = nAround > 0 ? quantile(around.subarray(0, nAround), 0.5) : 0;
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

  lap('ink');

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
  // a digit at twice the box's size or more has its pen's edges blurred over several pixels (see mnistSteps)
  if (cfg.deskew) digit = deskew(digit);
  lap('stroke');
  const steps = mnistSteps(digit, cfg, longSide >= 2 * cfg.box ? 0.5 : 0);
  lap('mnist');
  return { ...steps, inverted: darkInk, warnings, diagnostics };
}

/**
 * Step 8, the MNIST steps on a picture that is already white ink on black with the paper at 0: the ink is
 * area-averaged into the box keeping the aspect ratio (re-stretched, since averaging fades thin strokes),
 * and pasted into the field with the centre of mass at its centre.
 *
 * MNIST's box holds NIST's bilevel pen strokes, and its grey pixels are the anti-aliasing of that box
 * ("size normalized to fit in a 20x20 pixel box while preserving their aspect ratio ... grey levels as a
 * result of the anti-aliasing technique used by the normalization algorithm", LeCun, Cortes & Burges). A
 * photo at several pixels per box pixel has the pen's edge blurred over several pixels instead. So with
 * `level` > 0 the ink is first made bilevel at that level (0.5: half-way up a blurred edge, where the pen's
 * edge is), its bounding box is scaled to 20 on the long side with the short side centred in the box at
 * sub-pixel precision, as MNIST's are, and the result is kept to MNIST's 256 levels. Fitting the blur
 * into the box instead made digits a few % smaller and narrower than MNIST's and gave every stroke a
 * faint rim (MNIST test digit 11 drawn 8x came out 16 px wide where MNIST's is 18, and a pixel off).
 * `level` 0 keeps the grey pixels and the crop to whole pixels: for a digit that is already at box size
 * (MNIST's own) they are the coverage values MNIST made, and MNIST's digits pass through unchanged.
 */
export function mnistSteps(ink: GrayImage, config: Partial<PreprocessConfig> = {}, level = 0): { pixels: Float32Array; blank: boolean } {
  const cfg = { ...PREPROCESS_DEFAULTS, ...config };
  const none = { pixels: new Float32Array(cfg.size * cfg.size), blank: true };
  const pen = level > 0 ? { ...ink, data: ink.data.map((v) => (v >= level ? 1 : 0)) } : ink;
  const bbox = inkBBox(pen);
  if (!bbox) return none;
  let boxed: GrayImage;
  if (level > 0) {
    const s = cfg.box / Math.max(bbox.width, bbox.height); // box pixels per picture pixel
    const side = cfg.box / s; // the box, in picture pixels
    const from = { x: bbox.x - (side - bbox.width) / 2, y: bbox.y - (side - bbox.height) / 2, width: side, height: side };
    const averaged = scaleToMax(resampleArea(pen, from, cfg.box, cfg.box)); // [20, 20]
    for (let i = 0; i < averaged.data.length; i++) averaged.data[i] = Math.round(averaged.data[i] * 255) / 255;
    const used = inkBBox(averaged);
    if (!used) return none;
    boxed = crop(averaged, used); // [h≤20, w≤20]
  } else {
    const fit = fitInBox(bbox.width, bbox.height, cfg.box);
    boxed = scaleToMax(resizeArea(crop(pen, bbox), fit.width, fit.height)); // [h≤20, w≤20]
  }
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
