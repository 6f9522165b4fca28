/**
 * The report's explanations of *why*:
 *
 * - `saliency.png`: test images beside their gradient × input saliency for the predicted class
 *   (src/explain/saliency.ts), the first images of the test set and then its first mistakes, framed in red.
 * - `embedding.png`: the UMAP map of the last hidden layer (./embedding.ts), cached in the run folder.
 * - the confusion matrix as an HTML table whose cells link to that cell's mistakes further down the same
 *   self-contained report (each a small inlined PNG of the images with their saliency).
 */
import type { Canvas } from '@napi-rs/canvas';
import type { LabeledImages } from '../data/idx.ts';
import type { Params } from '../model/cnn.ts';
import { classCount, type NetworkConfig } from '../model/config.ts';
import { gradientTimesInputBatch } from '../explain/saliency.ts';
import { classify } from '../eval/classify.ts';
import { EMBEDDING_DEFAULTS } from '../explain/embedding.ts';
import { diverging, raster, symmetricScale } from './color.ts';
import { createFigure, drawHeader, encodePng, frame, putPixels, style, text } from './draw.ts';
import { drawEmbedding, loadOrFitEmbedding } from './embedding.ts';
import { imageRgba, type ImageShape } from './images.ts';

const SCALE = 3;
const COLUMNS = 6;

interface Explained {
  index: number;
  label: number;
  predicted: number;
  pixels: Float32Array;
  map: Float32Array;
}

/** Every test image's predicted class. */
function predictAll(net: NetworkConfig, params: Params, test: LabeledImages): Uint8Array {
  return classify(net, params, test.images, test.count);
}

/**
 * Each image with its gradient × input saliency for its predicted class, computed in batches (one backward
 * pass per 64 images, src/explain/saliency.ts), keyed by test index.
 */
function explainAll(net: NetworkConfig, params: Params, test: LabeledImages, indices: number[], predicted: Uint8Array): Map<number, Explained> {
  const size = test.height * test.width * test.channels;
  const unique = [...new Set(indices)];
  const images = new Float32Array(unique.length * size);
  unique.forEach((i, j) => images.set(test.images.subarray(i * size, (i + 1) * size), j * size));
  const maps = gradientTimesInputBatch(
    net,
    params,
    images,
    unique.map((i) => predicted[i]),
  );
  return new Map(
    unique.map((index, j) => [
      index,
      { index, label: test.labels[index], predicted: predicted[index], pixels: images.slice(j * size, (j + 1) * size), map: maps[j] },
    ]),
  );
}

/** An image and its saliency for the predicted class, one pixel per pixel, a white column between: [2w+1, h]. */
function pairCanvas(e: Explained, shape: ImageShape): Canvas {
  const { width: w, height: h } = shape;
  const { canvas, ctx } = createFigure(2 * w + 1, h);
  putPixels(ctx, imageRgba(e.pixels, shape, 1), 0, 0, w, h);
  const scale = symmetricScale(e.map);
  putPixels(
    ctx,
    raster(e.map, w, h, 1, (v) => diverging(v, scale)),
    w + 1,
    0,
    w,
    h,
  );
  return canvas;
}

/** Pairs (image, saliency) in a grid; mistakes framed and captioned in red. */
export function drawSaliency(items: Explained[], shape: ImageShape, title: string, subtitle: string, columns = COLUMNS): Canvas {
  const tile = { width: shape.width * SCALE, height: shape.height * SCALE };
  const cell = { width: 2 * tile.width + 6, height: tile.height + 30 };
  const gap = 18;
  const cols = Math.max(1, Math.min(columns, items.length));
  const rows = Math.ceil(items.length / cols);
  const width = Math.max(style.minWidth, 2 * style.margin + cols * cell.width + (cols - 1) * gap);
  const height = style.headerHeight + rows * (cell.height + gap) + style.margin;
  const { canvas, ctx } = createFigure(width, height);
  drawHeader(ctx, title, subtitle);
  items.forEach((item, i) => {
    const x = style.margin + (i % cols) * (cell.width + gap);
    const y = style.headerHeight + Math.floor(i / cols) * (cell.height + gap);
    const wrong = item.label !== item.predicted;
    putPixels(ctx, imageRgba(item.pixels, shape, SCALE), x, y, tile.width, tile.height);
    const scale = symmetricScale(item.map);
    putPixels(
      ctx,
      raster(item.map, shape.width, shape.height, SCALE, (v) => diverging(v, scale)),
      x + tile.width + 6,
      y,
      tile.width,
      tile.height,
    );
    frame(ctx, { x, y, ...tile }, wrong ? style.wrong : style.rule, wrong ? 2 : 1);
    frame(ctx, { x: x + tile.width + 6, y, ...tile }, style.rule);
    text(ctx, `#${item.index} True: ${item.label}, Pred: ${item.predicted}`, x + cell.width / 2, y + tile.height + 6, {
      align: 'center',
      baseline: 'top',
      size: style.smallSize,
      color: wrong ? style.wrong : style.text,
      bold: wrong,
    });
  });
  return canvas;
}

export interface ExplainFigures {
  figures: { file: string; kind: 'saliency' | 'embedding'; canvas: Canvas }[];
  /** The linked confusion matrix and each cell's mistakes, as HTML for report.html. */
  errorsHtml: string;
}

export interface ExplainOptions {
  classNames?: string[];
  log?: (line: string) => void;
  /** The predicted class of every test image, if the caller has classified the test set already. */
  predicted?: Uint8Array;
}

/**
 * Everything this module adds to `convlab visualize`: saliency.png, embedding.png (fitting the map, or
 * reading it from `modelDir`'s cache) and the HTML of the linked confusion matrix.
 */
export async function explainFigures(
  net: NetworkConfig,
  params: Params,
  test: LabeledImages,
  modelDir: string,
  options: ExplainOptions = {},
): Promise<ExplainFigures> {
  const { classNames, log } = options;
  const shape: ImageShape = { height: test.height, width: test.width, channels: test.channels };
  const predicted = options.predicted ?? predictAll(net, params, test);
  const mistakes: number[] = [];
  for (let i = 0; i < test.count; i++) if (predicted[i] !== test.labels[i]) mistakes.push(i);
  const first = Array.from({ length: Math.min(12, test.count) }, (_, i) => i);
  const chosen = [...first, ...mistakes.filter((i) => i >= first.length).slice(0, 12)];
  // every image shown anywhere (saliency.png, and up to 8 per confusion cell), explained in one go
  const cells = mistakeCells(test.labels, predicted, test.count);
  const explained = explainAll(net, params, test, [...chosen, ...[...cells.values()].flatMap((c) => c.slice(0, CELL_IMAGES))], predicted);
  const saliency = drawSaliency(
    chosen.map((i) => explained.get(i)!),
    shape,
    'Which pixels drove the answer: gradient × input for the predicted class',
    `Each test image, then its saliency: red pushed the score of the predicted class up, blue down. First ${first.length} test images, then mistakes (red).`,
  );
  const figures: ExplainFigures['figures'] = [{ file: 'saliency.png', kind: 'saliency', canvas: saliency }];
  // UMAP needs more images than neighbours per image (15)
  if (test.count > 2 * EMBEDDING_DEFAULTS.nNeighbors) {
    const { file } = await loadOrFitEmbedding(modelDir, net, params, test, { log });
    figures.push({ file: 'embedding.png', kind: 'embedding', canvas: drawEmbedding(file, classNames) });
  }
  return {
    figures,
    errorsHtml: await errorsByCell(classCount(net), test.labels, predicted, cells, explained, shape, classNames),
  };
}

/** Images shown per confusion cell in the report. */
const CELL_IMAGES = 8;

/** The test indices of each mistake, by cell `${true}-${predicted}`, in test-set order. */
function mistakeCells(labels: ArrayLike<number>, predicted: Uint8Array, count: number): Map<string, number[]> {
  const cells = new Map<string, number[]>();
  for (let i = 0; i < count; i++) {
    if (labels[i] === predicted[i]) continue;
    const key = `${labels[i]}-${predicted[i]}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key)!.push(i);
  }
  return cells;
}

/** The confusion matrix as a table of links, and per mistake cell its first images with saliency. */
async function errorsByCell(
  k: number,
  labels: ArrayLike<number>,
  predicted: Uint8Array,
  cells: Map<string, number[]>,
  explained: Map<number, Explained>,
  shape: ImageShape,
  classNames?: string[],
): Promise<string> {
  const name = (c: number) => escapeHtml(classNames?.[c] ?? String(c));
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < predicted.length; i++) confusion[labels[i]][predicted[i]] += 1;
  const max = Math.max(1, ...confusion.flatMap((row, i) => row.filter((_, j) => j !== i)));
  const head = `<tr><th>true \\ predicted</th>${Array.from({ length: k }, (_, j) => `<th>${name(j)}</th>`).join('')}</tr>`;
  const body = confusion
    .map((row, i) => {
      const tds = row.map((n, j) => {
        if (i === j) return `<td class="diag">${n}</td>`;
        if (n === 0) return '<td class="zero">0</td>';
        const level = Math.sqrt(n / max).toFixed(3);
        return `<td style="background: rgba(198, 40, 40, ${(0.12 + 0.7 * Number(level)).toFixed(3)})"><a href="#errors-${i}-${j}" title="${n} ${name(i)} taken for ${name(j)}">${n}</a></td>`;
      });
      return `<tr><th>${name(i)}</th>${tds.join('')}</tr>`;
    })
    .join('\n');
  // each mistake an image and its saliency side by side at one pixel per pixel, shown 3× by the browser
  // (pixelated: the same look as a figure drawn at 3×, a tenth of the bytes); the words are HTML
  const { width: w, height: h } = shape;
  const sections: string[] = [];
  for (const [key, indices] of [...cells].sort((a, b) => b[1].length - a[1].length)) {
    const [t, p] = key.split('-').map(Number);
    const figures: string[] = [];
    for (const e of indices.slice(0, CELL_IMAGES).map((i) => explained.get(i)!)) {
      const png = await encodePng(pairCanvas(e, shape));
      figures.push(
        `<figure><img src="data:image/png;base64,${png.toString('base64')}" width="${(2 * w + 1) * SCALE}" height="${h * SCALE}" alt="test image ${e.index}, a ${name(t)} taken for ${name(p)}, and its saliency for ${name(p)}"><figcaption>#${e.index}</figcaption></figure>`,
      );
    }
    sections.push(
      `<div class="error-cell" id="errors-${t}-${p}" data-count="${indices.length}"><h3>${indices.length} test image${indices.length === 1 ? '' : 's'} of ${name(t)} taken for ${name(p)}${indices.length > CELL_IMAGES ? ` (the first ${CELL_IMAGES})` : ''} <a href="#confusion-links">↑ back to the matrix</a></h3><div class="mistakes">${figures.join('')}</div></div>`,
    );
  }
  return `<section id="confusion-links">
<h2>Mistakes, cell by cell</h2>
<div class="pair"><div><table class="confusion-links">${head}
${body}</table></div>
<div class="explain"><p>The same confusion matrix, recomputed from the test set now: every number off the diagonal
is a link to those test images further down this page. Beside each image is its <b>saliency</b> for the wrong
answer: the pixels whose ink most raised the network's score for it (red) or lowered it (blue). A mistake
whose red lies on a stroke that really is ambiguous is an honest one; red on a smudge or on an empty patch
shows the network relying on something a person would ignore. Under each pair: the image's index in the test
set.</p></div></div>
${sections.join('\n')}
</section>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Headings and plain-language paragraphs for the two figures, for report.html. */
export function explainHeading(kind: 'saliency' | 'embedding'): string {
  return kind === 'saliency' ? 'Which pixels drove the answer' : 'What the network learned: a map of its last hidden layer';
}

export function explainText(kind: 'saliency' | 'embedding'): string {
  return kind === 'saliency'
    ? `<p>A <b>saliency map</b> answers "which pixels made the network say this?". For each pixel, convlab asks how
      fast the score of the predicted class (its logit) would grow if that pixel had a little more ink (the
      <i>gradient</i>, computed by backpropagation), and multiplies by the ink that is there (<b>gradient ×
      input</b>). <span class="pos">Red</span> pixels pushed the network towards its answer, <span class="neg">blue</span>
      ones away from it; empty paper stays white, since it has no ink to push with.</p>
      <p>On a well-trained network the red follows the strokes that tell this digit from its look-alikes: the
      closed top of a 9, the crossbar of a 7. On the mistakes (framed in red) it shows what misled it.</p>`
    : `<p>The last hidden layer turns each image into a list of numbers that the output layer reads to choose a
      digit. <b>UMAP</b> lays those lists out on a page so that images whose lists are close stay close: each dot is
      one test image, coloured by its true digit. Tight, separate islands mean the network has learned to tell the
      digits apart; a dot inside another colour's island is an image the network sees as that other digit (ringed
      dots are its mistakes).</p>
      <p>The map is fitted once per model with a fixed seed (so it is the same every time) and cached as
      <code>embedding.json</code> in the run folder; the page places your drawing on the same map as you draw.
      Distances between islands mean little: UMAP keeps neighbours, not the global layout.</p>`;
}
