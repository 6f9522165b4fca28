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
import { gradientTimesInput } from '../explain/saliency.ts';
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

function explain(net: NetworkConfig, params: Params, test: LabeledImages, index: number, predicted: number): Explained {
  const size = test.height * test.width * test.channels;
  const pixels = test.images.slice(index * size, (index + 1) * size);
  return { index, label: test.labels[index], predicted, pixels, map: gradientTimesInput(net, params, pixels, predicted).values };
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

/**
 * Everything this module adds to `convlab visualize`: saliency.png, embedding.png (fitting the map, or
 * reading it from `modelDir`'s cache) and the HTML of the linked confusion matrix.
 */
export async function explainFigures(
  net: NetworkConfig,
  params: Params,
  test: LabeledImages,
  modelDir: string,
  classNames?: string[],
  log?: (line: string) => void,
): Promise<ExplainFigures> {
  const shape: ImageShape = { height: test.height, width: test.width, channels: test.channels };
  const predicted = predictAll(net, params, test);
  const mistakes: number[] = [];
  for (let i = 0; i < test.count; i++) if (predicted[i] !== test.labels[i]) mistakes.push(i);
  const first = Array.from({ length: Math.min(12, test.count) }, (_, i) => i);
  const chosen = [...first, ...mistakes.filter((i) => i >= first.length).slice(0, 12)];
  const items = chosen.map((i) => explain(net, params, test, i, predicted[i]));
  const saliency = drawSaliency(
    items,
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
    errorsHtml: await errorsByCell(net, params, test, predicted, shape, classNames),
  };
}

/** The confusion matrix as a table of links, and per mistake cell its first images with saliency. */
async function errorsByCell(
  net: NetworkConfig,
  params: Params,
  test: LabeledImages,
  predicted: Uint8Array,
  shape: ImageShape,
  classNames?: string[],
): Promise<string> {
  const k = classCount(net);
  const name = (c: number) => escapeHtml(classNames?.[c] ?? String(c));
  const cells = new Map<string, number[]>();
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < test.count; i++) {
    const t = test.labels[i],
      p = predicted[i];
    confusion[t][p] += 1;
    if (t !== p) {
      const key = `${t}-${p}`;
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key)!.push(i);
    }
  }
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
  const sections: string[] = [];
  for (const [key, indices] of [...cells].sort((a, b) => b[1].length - a[1].length)) {
    const [t, p] = key.split('-').map(Number);
    const shown = indices.slice(0, 8).map((i) => explain(net, params, test, i, p));
    const png = await encodePng(
      drawSaliency(
        shown,
        shape,
        `${indices.length} × ${classNames?.[t] ?? t} taken for ${classNames?.[p] ?? p}`,
        'Each image, then gradient × input for the wrong answer: red is what pushed the network to it.',
        4,
      ),
    );
    sections.push(
      `<div class="error-cell" id="errors-${t}-${p}"><h3>${indices.length} test image${indices.length === 1 ? '' : 's'} of ${name(t)} taken for ${name(p)}${indices.length > 8 ? ' (the first 8)' : ''} <a href="#confusion-links">↑ back to the matrix</a></h3><img src="data:image/png;base64,${png.toString('base64')}" alt="the ${name(t)} → ${name(p)} mistakes with their saliency"></div>`,
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
shows the network relying on something a person would ignore.</p></div></div>
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
