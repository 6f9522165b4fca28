/**
 * Everything `convlab visualize` (and `convlab train`, at the end) draws for one saved model: load it and
 * its metrics.json if there is one, run test images through it, draw every figure, write the PNGs and
 * report.html. The caller chooses the backend first (`useBackend`); nothing here prints.
 *
 *   samples.png                 the first test images, true and predicted class
 *   conv1-weights.png           conv1's filters (one input channel)
 *   conv2-weights-ch<c>.png     conv2's filters, the slice reading input channel c (default c = 0, 1)
 *   conv1-maps.png, conv2-maps.png   feature maps of the chosen images (default test images 0 and 13)
 *   errors.png                  the first misclassified test images
 *   confusion.png               the test confusion matrix (from metrics.json, else computed here)
 *   curves.png                  loss and accuracy against iteration (needs metrics.json's history)
 *   report.html                 all of the above in one self-contained page
 */
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError, formatCount } from '../errors.ts';
import type { LabeledImages } from '../data/idx.ts';
import { loadDataset, parseDatasetSpec } from '../data/datasets.ts';
import { classCount, type NetworkConfig, type TrainConfig } from '../model/config.ts';
import { blockSteps } from './steps.ts';
import { disposeParams, forward, type Activations, type Params } from '../model/cnn.ts';
import { loadParams } from '../model/load.ts';
import { evaluatePredictions } from '../eval/metrics.ts';
import { classifyBatch, probabilityBatches } from '../eval/classify.ts';
import type { HistoryEntry } from '../train/loop.ts';
import type { Metrics } from '../train/run.ts';
import { preprocessFile } from '../predict/preprocess.ts';
import type { Canvas } from '@napi-rs/canvas';
import { encodePng } from './draw.ts';
import { drawErrors, drawSamples, type Classified, type ImageShape } from './images.ts';
import { drawFilters, filtersFileName, kernelScale, type ConvKernel } from './filters.ts';
import { drawFeatureMaps, type MapsRow } from './feature-maps.ts';
import { drawConfusion } from './confusion.ts';
import { drawCurves } from './curves.ts';
import { reportHtml, type Figure, type FigureKind, type Skipped } from './report.ts';
import { explainFigures } from './saliency.ts';

/** A test-set index, or the path of a PNG/JPEG picture of a digit. */
export type ImageChoice = number | string;

export interface VisualizeOptions {
  /** Folder written by `convlab train`: model.json, weights.bin, and usually metrics.json. */
  modelDir: string;
  /** Where to write the figures and report.html (default: modelDir). */
  outDir?: string;
  /** Images whose feature maps are drawn. Default: test images 0 and 13, as in the lesson. */
  images?: ImageChoice[];
  /** Input channels whose filter slices are drawn, for layers with more than one. Default: 0 and 1. */
  channels?: number[];
  /** How many test images samples.png and errors.png show. Default: 16 each. */
  samples?: number;
  errors?: number;
  /** The model's data set, if the caller has it loaded already (only its test split is used). */
  data?: { test: LabeledImages };
  /** Otherwise this data set (`mnist`, `idx:DIR`, `cifar10:DIR`); default: the one model.json records. */
  dataset?: string;
}

export interface VisualizeResult {
  outDir: string;
  /** In report order. */
  figures: Figure[];
  skipped: Skipped[];
  /** Path of report.html. */
  report: string;
}

export const DEFAULT_IMAGES: readonly ImageChoice[] = [0, 13];
export const DEFAULT_CHANNELS: readonly number[] = [0, 1];

export async function visualize(options: VisualizeOptions): Promise<VisualizeResult> {
  const outDir = options.outDir ?? options.modelDir;
  const model = await loadParams(options.modelDir);
  try {
    const { net, params } = model;
    const run = await readMetrics(options.modelDir, net);
    const recorded = typeof model.metadata.dataset === 'string' ? model.metadata.dataset : 'mnist';
    const data = options.data ?? (await loadDataset(parseDatasetSpec(options.dataset ?? recorded)));
    const test = data.test;
    const shape: ImageShape = { height: test.height, width: test.width, channels: test.channels };
    checkInputShape(net, shape);
    const maxLabel = test.labels.reduce((m, l) => Math.max(m, l), 0);
    if (maxLabel >= classCount(net)) {
      throw new UsageError(
        'MODEL_CLASSES',
        `the model tells ${classCount(net)} classes apart but the test set has label ${maxLabel}; pass --dataset with the data set the model was trained on`,
      );
    }
    const channels = checkChannels(net, options.channels ?? [...DEFAULT_CHANNELS]);
    const chosen = await chooseImages(options.images ?? [...DEFAULT_IMAGES], test, net);

    // --- run the test set (as far as needed) and the chosen images through the network
    // the whole test set: the confusion matrix (if metrics.json has none) and the explanations need every prediction
    const scan = scanTestSet(net, params, test, options.samples ?? 16, options.errors ?? 16, true);
    const confusion = run.confusion ?? scan.confusion!;
    const activations = convActivations(
      net,
      params,
      chosen.map((c) => c.pixels),
      shape,
    );

    // --- draw, in report order: training, predictions, inside each layer, mistakes
    const figures: Figure[] = [];
    const skipped: Skipped[] = [];
    const add = async (file: string, kind: FigureKind, canvas: Canvas, extra: Partial<Figure> = {}) =>
      figures.push({ file, kind, width: canvas.width, height: canvas.height, png: await encodePng(canvas), ...extra });

    if (run.history !== undefined) await add('curves.png', 'curves', drawCurves(run.history));
    else skipped.push({ file: 'curves.png', reason: run.historyMissing! });
    await add('samples.png', 'samples', drawSamples(scan.samples, shape));
    for (const [i, block] of net.conv.entries()) {
      const layer = `conv${i + 1}`;
      const kernel = convKernel(params, layer);
      const scale = kernelScale(kernel);
      for (const c of kernel.inChannels === 1 ? [0] : channels) {
        await add(filtersFileName(layer, kernel, c), 'weights', drawFilters(kernel, c, layer, scale), { layer: i + 1, channel: c });
      }
      const rows: MapsRow[] = chosen.map((image, n) => ({
        image: image.pixels,
        caption: [image.name, image.label === undefined ? `Pred: ${activations.predicted[n]}` : `True: ${image.label}, Pred: ${activations.predicted[n]}`],
        maps: activations.maps[i][n],
      }));
      const steps = blockSteps(block);
      await add(`${layer}-maps.png`, 'maps', drawFeatureMaps(rows, shape, activations.shapes[i], layer, steps), { layer: i + 1 });
    }
    await add('errors.png', 'errors', drawErrors(scan.errors, shape, scan.scanned, scan.found));
    const total = confusion.flat().reduce((a, b) => a + b, 0);
    await add('confusion.png', 'confusion', drawConfusion(confusion, `test set, ${formatCount(total)} images`));
    const classNames = 'classNames' in data ? (data.classNames as string[] | undefined) : undefined;
    const explained = await explainFigures(net, params, test, options.modelDir, { classNames, predicted: scan.predictions });
    for (const f of explained.figures) await add(f.file, f.kind, f.canvas);

    // --- write
    await mkdir(outDir, { recursive: true });
    for (const f of figures) await writeFile(join(outDir, f.file), f.png);
    const report = join(outDir, 'report.html');
    const html = reportHtml({
      modelDir: options.modelDir,
      net,
      train: run.metrics?.config?.train ?? (model.metadata.train as TrainConfig | undefined),
      metrics: run.metrics,
      metricsMissing: run.metricsMissing,
      confusion,
      confusionSource: run.confusion !== undefined ? 'metrics.json' : 'computed now from the test set',
      figures,
      skipped,
      generatedAt: new Date().toISOString(),
      errorsHtml: explained.errorsHtml,
    });
    await writeFile(report, html);
    return { outDir, figures, skipped, report };
  } finally {
    disposeParams(model.params);
  }
}

// -------------------------------------------------------------------------------------------------
// metrics.json
// -------------------------------------------------------------------------------------------------

interface RunRecord {
  metrics?: Partial<Metrics>;
  /** Why there are no metrics at all. */
  metricsMissing?: string;
  confusion?: number[][];
  history?: HistoryEntry[];
  /** Why there is no usable history. */
  historyMissing?: string;
}

/** metrics.json, with its confusion matrix and history checked before they are drawn. */
async function readMetrics(dir: string, net: NetworkConfig): Promise<RunRecord> {
  const file = join(dir, 'metrics.json');
  let metrics: Partial<Metrics>;
  try {
    metrics = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const why =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? `no metrics.json in ${dir} (the training history is recorded there)`
        : `${file} is unreadable (${(err as Error).message})`;
    return { metricsMissing: why, historyMissing: why };
  }
  if (typeof metrics !== 'object' || metrics === null) {
    const why = `${file} does not hold a JSON object`;
    return { metricsMissing: why, historyMissing: why };
  }
  const k = classCount(net);
  const m = metrics.confusionMatrix;
  const confusion =
    Array.isArray(m) && m.length === k && m.every((row) => Array.isArray(row) && row.length === k && row.every((n) => Number.isInteger(n) && n >= 0))
      ? m
      : undefined;
  const h = metrics.history;
  const historyOk = Array.isArray(h) && h.every((e) => typeof e?.iteration === 'number' && typeof e.loss === 'number' && typeof e.batchAccuracy === 'number');
  return {
    metrics,
    confusion,
    history: historyOk && h.length > 0 ? h : undefined,
    historyMissing: !historyOk
      ? `${file} has no valid history`
      : h.length === 0
        ? 'the model was not trained (0 iterations), so there is no learning curve'
        : undefined,
  };
}

// -------------------------------------------------------------------------------------------------
// Inputs
// -------------------------------------------------------------------------------------------------

interface ChosenImage {
  pixels: Float32Array;
  /** "test #13" or the file's name. */
  name: string;
  label?: number;
}

async function chooseImages(choices: ImageChoice[], test: LabeledImages, net: NetworkConfig): Promise<ChosenImage[]> {
  if (choices.length === 0) throw new UsageError('NO_IMAGES', 'no images chosen for the feature maps; pass --image N or --image FILE');
  const size = test.height * test.width * test.channels;
  const out: ChosenImage[] = [];
  for (const choice of choices) {
    if (typeof choice === 'number') {
      if (!Number.isInteger(choice) || choice < 0 || choice >= test.count) {
        throw new UsageError(
          'IMAGE_INDEX',
          `--image ${choice}: the test set has images 0 to ${formatCount(test.count - 1)}; pass an index in that range or a PNG/JPEG file`,
        );
      }
      out.push({ pixels: test.images.slice(choice * size, (choice + 1) * size), name: `test #${choice}`, label: test.labels[choice] });
    } else {
      const { height, width, channels } = net.input;
      if (height !== 28 || width !== 28 || channels !== 1) {
        throw new UsageError(
          'IMAGE_FILE_SHAPE',
          `--image ${choice}: picture files are prepared as 28x28 digits, but this model takes ${height}x${width}x${channels} images; pass test-set indices (--image N) instead`,
        );
      }
      const name = basename(choice);
      out.push({ pixels: await preprocessFile(choice), name: name.length > 16 ? `${name.slice(0, 15)}…` : name });
    }
  }
  return out;
}

function checkInputShape(net: NetworkConfig, shape: ImageShape): void {
  const { height, width, channels } = net.input;
  if (height !== shape.height || width !== shape.width || channels !== shape.channels) {
    throw new UsageError(
      'MODEL_INPUT_SHAPE',
      `the model takes ${height}x${width}x${channels} images but the test set has ${shape.height}x${shape.width}x${shape.channels}; pass --dataset with the data set the model was trained on`,
    );
  }
}

/** The channels to draw, checked against every layer that has more than one input channel. */
function checkChannels(net: NetworkConfig, channels: number[]): number[] {
  const unique = [...new Set(channels)];
  net.conv.forEach((_, i) => {
    const inChannels = i === 0 ? net.input.channels : net.conv[i - 1].filters;
    if (inChannels === 1) return;
    const bad = unique.find((c) => !Number.isInteger(c) || c < 0 || c >= inChannels);
    if (bad !== undefined) {
      throw new UsageError('CHANNEL_RANGE', `--channels ${bad}: conv${i + 1} has input channels 0 to ${inChannels - 1}; pick channels in that range`);
    }
  });
  if (unique.length === 0) throw new UsageError('CHANNEL_RANGE', '--channels: name at least one input channel, e.g. --channels 0,1');
  return unique;
}

// -------------------------------------------------------------------------------------------------
// Running the network
// -------------------------------------------------------------------------------------------------

interface Scan {
  samples: Classified[];
  errors: Classified[];
  /** Test images classified, and mistakes among them. */
  scanned: number;
  found: number;
  /** Present when the whole test set was classified. */
  confusion?: number[][];
  predictions?: Uint8Array;
}

/**
 * Classifies test images in batches until it has `samples` samples and `errors` mistakes, or the whole
 * test set when `full` (to build the confusion matrix metrics.json did not provide).
 */
function scanTestSet(
  net: NetworkConfig,
  params: Params,
  test: LabeledImages,
  samples: number,
  errors: number,
  full: boolean,
  batch = classifyBatch(net),
): Scan {
  const size = test.height * test.width * test.channels;
  const predictions = new Uint8Array(test.count);
  const scan: Scan = { samples: [], errors: [], scanned: 0, found: 0 };
  const item = (i: number, predicted: number, probability: number): Classified => ({
    pixels: test.images.slice(i * size, (i + 1) * size),
    index: i,
    label: test.labels[i],
    predicted,
    probability,
  });
  const k = classCount(net);
  const enough = () => !full && scan.samples.length >= Math.min(samples, test.count) && scan.errors.length >= errors;
  if (enough()) return scan;
  for (const { start, n, p } of probabilityBatches(net, params, test.images, test.count, batch)) {
    for (let j = 0; j < n; j++) {
      const i = start + j;
      let best = 0;
      for (let c = 1; c < k; c++) if (p[j * k + c] > p[j * k + best]) best = c;
      predictions[i] = best;
      if (scan.samples.length < samples) scan.samples.push(item(i, best, p[j * k + best]));
      if (best !== test.labels[i]) {
        scan.found += 1;
        if (scan.errors.length < errors) scan.errors.push(item(i, best, p[j * k + best]));
      }
    }
    scan.scanned += n;
    if (enough()) break; // before the next batch is classified
  }
  if (full) {
    scan.confusion = evaluatePredictions(predictions, test.labels, classCount(net)).confusion;
    scan.predictions = predictions;
  }
  return scan;
}

interface ConvActivations {
  /** maps[layer][image]: that image's output of the conv block, HWC. */
  maps: Float32Array[][];
  shapes: { height: number; width: number; channels: number }[];
  predicted: number[];
}

/** Every conv block's output for each image, recorded by `forward`. */
function convActivations(net: NetworkConfig, params: Params, images: Float32Array[], shape: ImageShape): ConvActivations {
  const size = shape.height * shape.width * shape.channels;
  const batch = new Float32Array(images.length * size);
  images.forEach((img, i) => batch.set(img, i * size));
  const { conv, classes } = tf.tidy(() => {
    const record: Activations = { conv: [], dense: [] };
    const x = tf.tensor4d(batch, [images.length, shape.height, shape.width, shape.channels]);
    const logits = forward(net, params, x, record); // [B,classes]
    return { conv: record.conv, classes: tf.argMax(logits, 1) };
  });
  const result: ConvActivations = { maps: [], shapes: [], predicted: Array.from(classes.dataSync()) };
  for (const t of conv) {
    const [, height, width, channels] = t.shape; // [B,h,w,filters]
    const values = t.dataSync() as Float32Array;
    const per = height * width * channels;
    result.maps.push(images.map((_, i) => values.slice(i * per, (i + 1) * per)));
    result.shapes.push({ height, width, channels });
  }
  tf.dispose([...conv, classes]);
  return result;
}

function convKernel(params: Params, layer: string): ConvKernel {
  const w = params.get(`${layer}/kernel`)!; // [size,size,in,out]
  const [size, , inChannels, outChannels] = w.shape;
  return { size, inChannels, outChannels, values: w.dataSync() as Float32Array };
}
