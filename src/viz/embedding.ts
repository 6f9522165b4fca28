/**
 * The embedding map on disk and as a figure.
 *
 * - `loadOrFitEmbedding`: the UMAP map of the last hidden layer (src/explain/embedding.ts) for the first
 *   2,000 test images, fitted once per model and cached as `embedding.json` in the run folder (written
 *   atomically; a cache whose key, a hash of weights.bin and the fit's parameters, does not match is refitted).
 * - `drawEmbedding`: `embedding.png`, the map coloured by true class with a legend; mistakes ringed.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Canvas } from '@napi-rs/canvas';
import type { LabeledImages } from '../data/idx.ts';
import type { Params } from '../model/cnn.ts';
import type { NetworkConfig } from '../model/config.ts';
import { EMBEDDING_DEFAULTS, fitEmbedding, hiddenFeatures, hiddenLayer, type EmbeddingFile, type EmbeddingParams } from '../explain/embedding.ts';
import { createFigure, drawHeader, style, text } from './draw.ts';

export const EMBEDDING_FILE = 'embedding.json';

/** Ten well-separated colours (Tableau 10), one per class; more classes cycle through them. */
export const CLASS_COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Writes `data` to `path` atomically: a temporary file in the same folder, flushed, then renamed over. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function cacheKey(modelDir: string, params: EmbeddingParams): Promise<string> {
  const hash = createHash('sha256');
  hash.update(await readFile(join(modelDir, 'weights.bin')));
  hash.update(JSON.stringify(params));
  return hash.digest('hex').slice(0, 32);
}

/**
 * The model's embedding map: from `embedding.json` in `modelDir` when it is current, else fitted now (tens
 * of seconds) and cached there. `cacheDir` overrides where the cache lives (a read-only model folder).
 */
export async function loadOrFitEmbedding(
  modelDir: string,
  net: NetworkConfig,
  params: Params,
  test: LabeledImages,
  options: { cacheDir?: string; params?: Partial<EmbeddingParams>; log?: (line: string) => void } = {},
): Promise<{ file: EmbeddingFile; cached: boolean }> {
  const fit: EmbeddingParams = { ...EMBEDDING_DEFAULTS, ...options.params, count: Math.min(options.params?.count ?? EMBEDDING_DEFAULTS.count, test.count) };
  const key = await cacheKey(modelDir, fit);
  const path = join(options.cacheDir ?? modelDir, EMBEDDING_FILE);
  try {
    const cached = JSON.parse(await readFile(path, 'utf8')) as EmbeddingFile;
    if (cached.version === 1 && cached.key === key) return { file: cached, cached: true };
  } catch {
    // no cache yet, or an unreadable one: fit anew
  }
  options.log?.(`fitting the embedding map of ${fit.count} test images (UMAP, seed ${fit.seed})…`);
  const { features, predicted, dims } = hiddenFeatures(net, params, test.images, fit.count);
  const file = fitEmbedding(features, dims, { key, layer: hiddenLayer(net).name, labels: test.labels.subarray(0, fit.count), predicted }, fit);
  try {
    await writeFileAtomic(path, JSON.stringify(file));
  } catch (err) {
    options.log?.(`could not cache the embedding in ${path}: ${(err as Error).message}`);
  }
  return { file, cached: false };
}

/** `embedding.png`: every image a dot at its map position, coloured by its true class; mistakes ringed in black. */
export function drawEmbedding(file: EmbeddingFile, classNames?: string[]): Canvas {
  const plot = 560;
  const legendWidth = 150;
  const width = style.margin * 2 + plot + legendWidth;
  const height = style.headerHeight + plot + style.margin * 2;
  const { canvas, ctx } = createFigure(width, height);
  const wrong = file.labels.filter((l, i) => l !== file.predicted[i]).length;
  drawHeader(
    ctx,
    `What the network learned: ${file.layer} of ${file.count.toLocaleString('en-US')} test images, mapped to 2-D (UMAP)`,
    `Colour: the true class. Nearby dots look alike to the network; ${wrong} ringed dots are mistakes.`,
  );
  const xs = file.points.map((p) => p[0]),
    ys = file.points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)],
    [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const span = Math.max(x1 - x0, y1 - y0) || 1;
  const left = style.margin,
    top = style.headerHeight + style.margin;
  const px = (x: number) => left + 8 + ((x - x0) / span) * (plot - 16);
  const py = (y: number) => top + 8 + ((y - y0) / span) * (plot - 16);
  ctx.strokeStyle = style.rule;
  ctx.strokeRect(left + 0.5, top + 0.5, plot, plot);
  file.points.forEach(([x, y], i) => {
    ctx.fillStyle = CLASS_COLORS[file.labels[i] % CLASS_COLORS.length];
    ctx.beginPath();
    ctx.arc(px(x), py(y), 2.6, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.strokeStyle = '#000';
  ctx.lineWidth = 1.2;
  file.points.forEach(([x, y], i) => {
    if (file.labels[i] === file.predicted[i]) return;
    ctx.beginPath();
    ctx.arc(px(x), py(y), 4.5, 0, 2 * Math.PI);
    ctx.stroke();
  });
  const classes = Math.max(...file.labels) + 1;
  for (let k = 0; k < classes; k++) {
    const y = top + 14 + k * 24;
    ctx.fillStyle = CLASS_COLORS[k % CLASS_COLORS.length];
    ctx.beginPath();
    ctx.arc(left + plot + 30, y, 6, 0, 2 * Math.PI);
    ctx.fill();
    text(ctx, classNames?.[k] ?? String(k), left + plot + 44, y, { baseline: 'middle' });
  }
  const ringY = top + 14 + classes * 24 + 10;
  ctx.beginPath();
  ctx.arc(left + plot + 30, ringY, 4.5, 0, 2 * Math.PI);
  ctx.stroke();
  text(ctx, 'mistake', left + plot + 44, ringY, { baseline: 'middle', color: style.muted });
  return canvas;
}
