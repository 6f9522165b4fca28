/**
 * The page's composition root: choose a backend, load the served model, and wire the drawing pad, the
 * views, the server comparison and in-page training together. Every other module is told what to do
 * from here; none of them knows about the others.
 */
import { memory } from '@tensorflow/tfjs';
import { getEmbedding, getErrors, getMnist, getModelInfo, getTestRun, pixelsFromBase64, predictOnServer } from './api.ts';
import { chooseBackend } from './backend.ts';
import { DrawingPad } from './draw.ts';
import { filterBanks, loadNetwork, look, type Network } from './network.ts';
import { BrowserTrainer, type StepReport } from './training.ts';
import { LineChart } from './views/chart.ts';
import { FiltersView } from './views/filters.ts';
import { LayersView } from './views/layers.ts';
import { ProbabilityView } from './views/probabilities.ts';
import { CellView } from './views/cell.ts';
import { ConfusionView } from './views/confusion.ts';
import { EmbeddingView } from './views/embedding.ts';
import { gray, paintGrid, paintRgb } from './views/paint.ts';
import { listenForPictures, preprocessPicture, showOriginal, type Picture } from './views/picture.ts';
import { SaliencyView } from './views/saliency.ts';
import type { TestImage } from '../../src/explain/api.ts';

/** What the network is looking at: the drawing, a picture of yours, or a test image from the mistakes. */
type Source =
  | { kind: 'drawing' }
  | { kind: 'picture'; picture: Picture; pixels: Float32Array | null; note: string }
  | { kind: 'test'; pixels: Float32Array; image: TestImage };

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
};
const pct = (v: number, digits = 1) => `${(v * 100).toFixed(digits)}%`;

/** Validation examples for in-page training: the first 500 of the MNIST test set. */
const VALIDATION_COUNT = 500;

async function main(): Promise<void> {
  // --- backend and model
  const skipped: string[] = [];
  const backend = await chooseBackend(new URLSearchParams(location.search).get('backend'), (name, why) => skipped.push(`${name}: ${why}`));
  const backendBadge = $('backend-badge');
  backendBadge.textContent = `backend: ${backend}`;
  backendBadge.title = skipped.length ? `skipped ${skipped.join('; ')}` : 'the first choice worked';
  document.body.dataset.backend = backend;

  const [info, served] = await Promise.all([getModelInfo(), loadNetwork('/model/model.json')]);
  const dataset = ({ mnist: 'the MNIST', cifar10: 'the CIFAR-10' } as Record<string, string>)[String(info.metrics?.dataset ?? 'mnist').split(':')[0]] ?? 'its';
  const testAccuracy = typeof info.metrics?.testAccuracy === 'number' ? `${pct(info.metrics.testAccuracy, 2)} on ${dataset} test set · ` : '';
  $('model-badge').textContent = `served model: ${testAccuracy}${info.parameters.toLocaleString('en-US')} parameters`;
  $('onnx-download').setAttribute('href', info.files.onnx);

  // --- views
  const probabilities = new ProbabilityView($('bars'), $('verdict-digit'), $('verdict-text'), $('server-text'));
  const input = served.net.input;
  const convShapes = info.architecture.filter((l) => l.kind === 'conv').map((l) => l.outputShape as [number, number, number]);
  const cellView = new CellView($('cell-view'), convShapes);
  const layers = new LayersView($('layers'), info.architecture, input, (block, channel, row, col) => cellView.select({ block, channel, row, col }));
  const saliencyView = new SaliencyView($('saliency'), info.architecture[info.architecture.length - 1].outputShape[0]);
  const embeddingView = new EmbeddingView($('embedding'));
  const filters = new FiltersView($('filters'));
  const lossChart = new LineChart($<HTMLCanvasElement>('loss-chart'), { yFormat: (v) => v.toFixed(2) });
  lossChart.addSeries('train loss', '--series-1');
  const accChart = new LineChart($<HTMLCanvasElement>('acc-chart'), { yMax: 1, yFormat: (v) => pct(v, 0) });
  accChart.addSeries('batch', '--series-2');
  accChart.addSeries('validation', '--series-3', true);

  let active: Network = served;
  let trainer: BrowserTrainer | null = null;
  const compareBox = $<HTMLInputElement>('compare');

  // --- drawing → prediction, every view, and (optionally) the server's answer
  const padCanvas = $<HTMLCanvasElement>('pad');
  const pad = new DrawingPad(padCanvas, () => refresh());
  const rgb = input.channels === 3;
  const mnistShaped = input.height === 28 && input.width === 28 && input.channels === 1;
  let source: Source = { kind: 'drawing' };
  let updates = 0;
  function refresh(): void {
    refreshViews();
    document.body.dataset.tensors = String(memory().numTensors); // a leak would show here (and in the tests)
  }
  function refreshViews(): void {
    const t0 = performance.now();
    showSource();
    const pixels = source.kind === 'drawing' ? (rgb ? null : pad.pixels()) : source.pixels;
    if (!pixels) {
      const why =
        source.kind === 'picture'
          ? `No digit found in ${source.picture.name}: ${source.note}.`
          : rgb
            ? 'Choose, drop or paste a colour picture.'
            : pad.hasInk
              ? 'No ink found: draw with bolder strokes.'
              : undefined;
      probabilities.clear(why);
      layers.clear();
      saliencyView.clear();
      cellView.clear();
      embeddingView.update(null);
      return;
    }
    const seen = look(active, pixels);
    const who = active === served ? 'served model' : `trained here, step ${trainer?.step ?? 0}`;
    const what =
      source.kind === 'picture'
        ? ` · ${source.picture.name}`
        : source.kind === 'test'
          ? ` · test image #${source.image.index} (true ${source.image.label})`
          : '';
    probabilities.update(seen.probabilities, seen.class, `${who}${what} · ${seen.ms.toFixed(1)} ms on ${backend}`);
    layers.update(seen);
    saliencyView.update(active, pixels, seen.class);
    cellView.update(active, seen);
    const hidden = embeddingView.layer === 'flatten' ? seen.layers[convShapes.length - 1]?.data : seen.layers.find((l) => l.name === embeddingView.layer)?.data;
    embeddingView.update(hidden ?? null);
    askServer(pixels, seen.probabilities, seen.class);
    // drawing → every view updated, for the page's own timing (and the browser test that prints it)
    updates += 1;
    document.body.dataset.updateMs = (performance.now() - t0).toFixed(2);
    document.body.dataset.updates = String(updates);
  }

  // --- the source: drawing, your picture, or a test image
  const sourceBox = $('source');
  const sourceNote = $('source-note');
  function showSource(): void {
    sourceBox.hidden = source.kind === 'drawing';
    if (source.kind === 'drawing') {
      sourceNote.textContent = '';
      return;
    }
    const seenCanvas = $<HTMLCanvasElement>('seen');
    const pixels = source.pixels;
    if (pixels) {
      if (rgb) paintRgb(seenCanvas, pixels, input.height, input.width);
      else paintGrid(seenCanvas, input.height, input.width, (r, c) => pixels[r * input.width + c], gray, 1);
    }
    seenCanvas.dataset.ink = pixels ? pixels.reduce((a, b) => a + b, 0).toFixed(3) : '0';
    $('seen-caption').textContent = `what the network saw (${input.width}×${input.height})`;
    if (source.kind === 'picture') {
      $('original-caption').textContent = `${source.picture.name} (${source.picture.width}×${source.picture.height})`;
      sourceNote.textContent = source.note;
    } else {
      const original = $<HTMLCanvasElement>('original');
      const test = source.pixels;
      if (rgb) paintRgb(original, test, input.height, input.width);
      else paintGrid(original, input.height, input.width, (r, c) => test[r * input.width + c], gray, 1);
      $('original-caption').textContent = `test image #${source.image.index}, true class ${source.image.label}`;
      sourceNote.textContent = 'A test image from the mistakes below. Draw on the square to go back to drawing.';
    }
  }
  function usePicture(picture: Picture): void {
    const { pixels, note } = preprocessPicture(picture, input);
    source = { kind: 'picture', picture, pixels, note };
    showOriginal($<HTMLCanvasElement>('original'), picture);
    document.body.dataset.source = 'picture';
    refresh();
  }
  listenForPictures($<HTMLInputElement>('picture'), $('drop-zone'), usePicture, (message) => {
    sourceNote.textContent = message;
  });
  padCanvas.addEventListener('pointerdown', () => {
    if (source.kind !== 'drawing') {
      source = { kind: 'drawing' };
      document.body.dataset.source = 'drawing';
      pad.clear();
    }
  });
  if (rgb) pictureOnly(input);
  $('clear').addEventListener('click', () => {
    source = { kind: 'drawing' };
    document.body.dataset.source = 'drawing';
    pad.clear();
  });

  // --- mistakes and the map, from the server's test run (slower: loaded after the page is up)
  const confusionView = new ConfusionView(
    $('confusion-view'),
    getErrors,
    pixelsFromBase64,
    () => active,
    ({ pixels, image }) => {
      source = { kind: 'test', pixels, image };
      document.body.dataset.source = 'test';
      refresh();
      $('draw-title').scrollIntoView({ block: 'start', behavior: 'smooth' });
    },
  );
  getTestRun()
    .then((run) => {
      confusionView.show(run);
      if (run.classNames) {
        probabilities.names(run.classNames);
        saliencyView.names(run.classNames);
        embeddingView.names(run.classNames);
        refresh();
      }
    })
    .catch((err: Error) => confusionView.fail(`Could not load the test run: ${err.message}`));
  getEmbedding()
    .then((file) => {
      embeddingView.show(file);
      refresh();
    })
    .catch((err: Error) => embeddingView.fail(`Could not load the map: ${err.message}`));
  compareBox.addEventListener('change', () => {
    if (!compareBox.checked) probabilities.showServer(null);
    refresh();
  });

  let compareTimer: ReturnType<typeof setTimeout> | undefined;
  let compareSeq = 0;
  function askServer(pixels: Float32Array, mine: Float32Array, mineClass: number): void {
    clearTimeout(compareTimer);
    if (!compareBox.checked) return;
    const seq = ++compareSeq;
    compareTimer = setTimeout(async () => {
      try {
        const answer = await predictOnServer(pixels);
        if (seq !== compareSeq || !compareBox.checked) return; // a newer drawing is on its way
        const maxDiff = Math.max(...answer.probabilities.map((p, k) => Math.abs(p - mine[k])));
        const note = active === served ? undefined : 'the server runs the served model, not the one trained here';
        probabilities.showServer({ prediction: answer, agrees: answer.class === mineClass, maxDiff, note });
      } catch (err) {
        if (seq === compareSeq) probabilities.showServer(`Server: ${(err as Error).message}`);
      }
    }, 120);
  }

  // --- which network the pad uses
  const choices = [...document.querySelectorAll<HTMLInputElement>('input[name="model"]')];
  const trainedChoice = choices.find((c) => c.value === 'trained')!;
  function use(which: 'served' | 'trained'): void {
    active = which === 'trained' && trainer ? trainer.network : served;
    for (const c of choices) c.checked = c.value === (active === served ? 'served' : 'trained');
    filters.update(filterBanks(active));
    refresh();
  }
  for (const c of choices) c.addEventListener('change', () => use(c.value as 'served' | 'trained'));
  use('served');

  // --- training in the page
  const startButton = $<HTMLButtonElement>('train-start');
  const pauseButton = $<HTMLButtonElement>('train-pause');
  const resetButton = $<HTMLButtonElement>('train-reset');
  const settingInputs = ['train-count', 'train-batch', 'train-lr'].map((id) => $<HTMLSelectElement>(id));
  const status = $('train-status');
  let lastValidation: number | null = null;
  let smoothLoss = NaN,
    smoothAcc = NaN;

  function showStatus(r: StepReport | null, text?: string): void {
    status.dataset.step = String(r?.step ?? trainer?.step ?? 0);
    if (text !== undefined) {
      status.textContent = text;
      return;
    }
    if (!r) return;
    status.textContent = [
      `step ${r.step}`,
      `epoch ${r.epochs.toFixed(1)}`,
      `loss ${smoothLoss.toFixed(3)}`,
      `batch accuracy ${pct(smoothAcc)}`,
      lastValidation === null ? 'validation …' : `validation ${pct(lastValidation)}`,
      `${Math.round(r.imagesPerSecond).toLocaleString('en-US')} images/s on ${backend}`,
      trainer?.isRunning ? 'training' : 'paused',
    ].join(' · ');
  }

  function setButtons(): void {
    const exists = trainer !== null;
    const running = trainer?.isRunning ?? false;
    startButton.disabled = exists || !mnistShaped; // in-page training uses MNIST digits
    pauseButton.disabled = !exists;
    pauseButton.textContent = exists && !running ? 'Resume' : 'Pause';
    resetButton.disabled = !exists;
    for (const s of settingInputs) s.disabled = exists;
    trainedChoice.disabled = !exists;
  }

  startButton.addEventListener('click', async () => {
    startButton.disabled = true;
    const [count, batchSize, learningRate] = settingInputs.map((s) => Number(s.value));
    showStatus(null, `Fetching ${count.toLocaleString('en-US')} training and ${VALIDATION_COUNT} validation digits from the server…`);
    try {
      const [train, validation] = await Promise.all([getMnist('train', count), getMnist('test', VALIDATION_COUNT)]);
      smoothLoss = smoothAcc = NaN;
      lastValidation = null;
      lossChart.reset();
      accChart.reset();
      trainer = new BrowserTrainer(
        served.net,
        { train, validation },
        { batchSize, learningRate, seed: 1, validateEvery: 25 },
        {
          onStep(r) {
            // exponential moving averages: one batch is a noisy estimate
            smoothLoss = Number.isNaN(smoothLoss) ? r.loss : 0.9 * smoothLoss + 0.1 * r.loss;
            smoothAcc = Number.isNaN(smoothAcc) ? r.batchAccuracy : 0.9 * smoothAcc + 0.1 * r.batchAccuracy;
            lossChart.push('train loss', r.step, smoothLoss);
            accChart.push('batch', r.step, smoothAcc);
            showStatus(r);
            // filters and, if the pad uses this network, the prediction follow the learning
            if (trainer && active === trainer.network && (r.step <= 10 || r.step % 5 === 0)) {
              filters.update(filterBanks(active));
              refresh();
            }
          },
          onValidate(step, accuracy) {
            lastValidation = accuracy;
            accChart.push('validation', step, accuracy);
          },
          onError(err) {
            setButtons();
            showStatus(null, `Training stopped: ${err.message}`);
          },
        },
      );
      lastValidation = trainer.validate();
      accChart.push('validation', 0, lastValidation);
      use('trained');
      trainer.resume();
      showStatus(
        null,
        `Training started: ${count.toLocaleString('en-US')} examples, batch ${batchSize}, learning rate ${learningRate} (validation before training ${pct(lastValidation)}).`,
      );
    } catch (err) {
      showStatus(null, `Could not start training: ${(err as Error).message}`);
      trainer = null;
    }
    setButtons();
  });

  pauseButton.addEventListener('click', async () => {
    if (!trainer) return;
    if (trainer.isRunning) {
      pauseButton.disabled = true;
      await trainer.pause();
      document.body.dataset.tensors = String(memory().numTensors);
      status.textContent = status.textContent?.replace(/training$/, 'paused') ?? '';
    } else {
      trainer.resume();
    }
    setButtons();
  });

  resetButton.addEventListener('click', async () => {
    if (!trainer) return;
    const old = trainer;
    trainer = null;
    use('served');
    await old.dispose();
    lossChart.reset();
    accChart.reset();
    showStatus(null, 'Not started.');
    setButtons();
  });

  setButtons();
  if (!mnistShaped) {
    // the server's /api/predict and the page's training both take 28x28 digits (MNIST) only
    compareBox.disabled = true;
    compareBox.closest('label')!.title = `the server's /api/predict reads 28×28 digits; this model takes ${input.width}×${input.height}×${input.channels}`;
    $('train-status').textContent = `Training in the page uses MNIST digits; this model takes ${input.width}×${input.height}×${input.channels} images.`;
  }
  document.body.dataset.ready = 'true';
}

/** A colour model (CIFAR-10): no drawing pad, pictures only; the texts say so. */
function pictureOnly(input: { height: number; width: number }): void {
  $('pad').hidden = true;
  $('rgb-note').hidden = false;
  document.body.dataset.input = 'rgb';
  $('draw-title').textContent = 'Your picture';
  document.title = 'convlab · show it a picture';
  $('verdict-text').textContent = 'Choose, drop or paste a colour picture.';
  // the server comparison and in-page training read 28x28 digits: not offered
  $('compare').closest('label')!.hidden = true;
  document.querySelector<HTMLElement>('.model-choice')!.hidden = true;
  $('drop-hint').textContent = 'Or drop a picture on the box above, or paste one (Ctrl+V).';
  document.querySelector('.brand p')!.textContent =
    `Show it a colour picture. A convolutional network reads it at ${input.width}×${input.height}, as its data set was made, in your browser.`;
}

main().catch((err: unknown) => {
  const box = document.getElementById('fatal');
  if (box) {
    box.hidden = false;
    box.textContent = `The page could not start: ${(err as Error)?.message ?? String(err)}`;
  }
  document.body.dataset.ready = 'error';
  console.error(err);
});
