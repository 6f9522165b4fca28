/**
 * `report.html`: one self-contained page (figures inlined as data URIs, no scripts, nothing fetched) with
 * the run's configuration and metrics, every figure next to a plain-language account of what it shows,
 * and a per-class precision/recall table. Pure: data in, HTML string out.
 */
import type { NetworkConfig, TrainConfig } from '../model/config.ts';
import { blockOutputSize, describeAugment, describeOptimizer, flattenSize, weightSpecs } from '../model/config.ts';
import { perClass } from '../eval/metrics.ts';
import type { Metrics } from '../train/run.ts';
import { blockSteps } from './steps.ts';
import { explainHeading, explainText } from './saliency.ts';

export type FigureKind = 'samples' | 'weights' | 'maps' | 'errors' | 'confusion' | 'curves' | 'saliency' | 'embedding';

/** A drawn figure, PNG-encoded. */
export interface Figure {
  file: string;
  kind: FigureKind;
  /** For weights and maps: the layer's 1-based index, and for weights the input channel. */
  layer?: number;
  channel?: number;
  width: number;
  height: number;
  png: Buffer;
}

export interface Skipped {
  file: string;
  reason: string;
}

export interface ReportInput {
  modelDir: string;
  net: NetworkConfig;
  train?: TrainConfig;
  /** metrics.json as read (fields may be missing); undefined when there is none. */
  metrics?: Partial<Metrics>;
  metricsMissing?: string;
  confusion: number[][];
  /** Where the confusion matrix came from, e.g. "metrics.json". */
  confusionSource: string;
  figures: Figure[];
  skipped: Skipped[];
  generatedAt: string;
  /** The confusion matrix linked to each cell's mistakes (src/viz/saliency.ts), after the per-class table. */
  errorsHtml?: string;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const pct = (x: number, digits = 2) => `${(100 * x).toFixed(digits)}%`;
const count = (n: number) => n.toLocaleString('en-US');
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

// -------------------------------------------------------------------------------------------------
// What each figure shows, in plain words
// -------------------------------------------------------------------------------------------------

function heading(f: Figure): string {
  switch (f.kind) {
    case 'curves':
      return 'Learning curves';
    case 'samples':
      return 'Test images and predictions';
    case 'weights':
      return f.layer === 1 ? `conv${f.layer}: the filters` : `conv${f.layer}: the filters, input channel ${f.channel}`;
    case 'maps':
      return `conv${f.layer}: the feature maps`;
    case 'errors':
      return 'Mistakes';
    case 'confusion':
      return 'Confusion matrix';
    case 'saliency':
    case 'embedding':
      return explainHeading(f.kind);
  }
}

function explanation(f: Figure, net: NetworkConfig): string {
  const layer = (f.layer ?? 1) - 1;
  const block = net.conv[layer];
  const inChannels = layer === 0 ? net.input.channels : net.conv[layer - 1].filters;
  switch (f.kind) {
    case 'curves':
      return `<p>The <b>loss</b> measures how wrong the network's probabilities are: for each image it is
        −log(<i>p</i>), where <i>p</i> is the probability given to the right digit, averaged over a batch (the
        <i>cross-entropy</i>). A network that guesses uniformly among 10 digits has loss log 10 ≈ 2.3; a network
        that is always sure and right has loss 0.</p>
        <p><b>Batch accuracy</b> is measured on the training batches as they are used; <b>validation accuracy</b>
        on images kept out of training. While both rise together the network is learning general rules; if
        validation stalled while the training curves kept improving, it would be memorising its training images
        (<i>overfitting</i>).</p>`;
    case 'samples':
      return `<p>These test images were never seen in training. For each, the last layer outputs ten numbers, one
        per digit (the <i>logits</i>). <b>Softmax</b> turns them into probabilities: it raises <i>e</i> to each
        number and divides by the sum, so all ten are positive, add up to 1, and the largest logit gets the
        largest share.</p>
        <p><i>Pred</i> is the digit with the highest probability and <i>p</i> that probability: near 1 the network
        is sure; near 0.5 it hesitated between two digits. Wrong answers are in red.</p>`;
    case 'weights':
      return layer === 0
        ? `<p>A <b>filter</b> is a small grid of weights, here ${block.size}×${block.size}, that slides over the
          image. At every position it multiplies the pixels under it by its weights and adds the products up
          (plus a bias). The sum is large where that patch of the image looks like the filter's <span class="pos">red</span>
          (positive) part and not like its <span class="neg">blue</span> (negative) part.</p>
          <p>Nobody designed these patterns: training found them. Many become stroke and edge detectors: a red band
          beside a blue band responds to an edge at that angle. All filters share one colour scale centred at zero
          (white), so a pale filter really has small weights.</p>`
        : `<p>conv${layer + 1}'s filters do not look at the picture: they look at the ${inChannels} feature maps that
          conv${layer} produced. So each of its ${block.filters} filters is ${block.size}×${block.size}×${inChannels}:
          one ${block.size}×${block.size} slice per input map, and it adds up the responses of all ${inChannels}.</p>
          <p>This figure shows, for every conv${layer + 1} filter, the slice that reads conv${layer}'s map
          ${f.channel} (<code>conv${layer + 1}-weights-ch${f.channel}.png</code>; the other channels have figures named
          the same way). These weights combine patterns rather than pixels, so they are harder to read than
          conv${layer}'s. One colour scale covers every channel of conv${layer + 1}.</p>`;
    case 'maps': {
      const pool = block.pool === 'max' ? block.poolSize : 1;
      const before = blockSize(net, layer);
      const after = blockSize(net, layer + 1);
      // The lesson's block gets the lesson's explanation; any other block, one generated from its config.
      const lessonBlock = block.pool === 'max' && block.activation === 'relu' && block.stride === 1 && block.dropout === 0;
      if (!lessonBlock) return genericMapsText(net, layer, before, after);
      return layer === 0
        ? `<p>A <b>feature map</b> is one filter's output at every position of the image: filter <i>k</i> slid over
          the input gives map <i>k</i>. Bright means the filter found its pattern there.</p>
          <p>Two steps follow the convolution. <b>Max-pooling</b> keeps the largest value of every ${pool}×${pool}
          block, shrinking the maps from ${before}×${before} to ${after}×${after}: the next layer has less to do, and
          a digit moved by a pixel gives almost the same result. <b>ReLU</b> (rectified linear unit) then replaces
          every negative value by zero, relu(<i>x</i>) = max(0, <i>x</i>); without such a bend, stacked layers
          could only compute one linear function. (Pooling first and ReLU second gives the same maps as the other
          way round, with less work.)</p>`
        : `<p>conv${layer + 1}'s ${block.filters} maps are ${after}×${after}. Each combines all ${inChannels} maps of
          conv${layer} through its ${block.size}×${block.size}×${inChannels} filter, then pooling and ReLU follow as
          before. They no longer look like the digit: each tends to light up where a larger part (a loop, a
          stroke's end, a crossing) appears.</p>
          <p>Flattened, these ${count(flattenSize(net))} numbers are all the fully connected layers get to decide
          which digit this is.</p>`;
    }
    case 'errors':
      return `<p>The first test images the network got wrong, with the truth, its answer, and <i>p</i>, the softmax
        probability it gave its wrong answer. Some are so badly written that a person would hesitate too; others
        look clear to us and show what the network has not learned yet. A high <i>p</i> on a wrong answer means
        the network was confidently wrong.</p>`;
    case 'confusion':
      return `<p>The <b>confusion matrix</b> counts, for every true digit (row) and every prediction (column), how
        many test images fell there. Correct answers sit on the diagonal; every other non-zero cell is one kind of
        mistake: row 4, column 9 counts fours taken for nines. Large off-diagonal cells show which digits the
        network confuses, usually ones that look alike.</p>
        <p>The table below sums each row and column up as recall and precision.</p>`;
    case 'saliency':
    case 'embedding':
      return explainText(f.kind);
  }
}

/** The feature-map explanation for a block that is not the lesson's conv → max-pool → ReLU. */
function genericMapsText(net: NetworkConfig, layer: number, before: number, after: number): string {
  const b = net.conv[layer];
  const source = layer === 0 ? 'the input image' : `the ${net.conv[layer - 1].filters} maps of conv${layer}`;
  const act = {
    relu: '<b>ReLU</b> replaces every negative value by zero, relu(<i>x</i>) = max(0, <i>x</i>)',
    sigmoid: '<b>sigmoid</b> squashes every value into (0, 1), σ(<i>x</i>) = 1/(1 + e<sup>−<i>x</i></sup>)',
    tanh: '<b>tanh</b> squashes every value into (−1, 1)',
  }[b.activation];
  const pool =
    b.pool === 'none'
      ? b.stride > 1
        ? `There is no pooling: the convolution itself moves ${b.stride} pixels at a time (a <b>strided convolution</b>), so the maps shrink from ${before}×${before} to ${after}×${after} and the network learns how to downsample.`
        : `There is no pooling, so the maps stay ${after}×${after}.`
      : `<b>${b.pool === 'max' ? 'Max' : 'Average'}-pooling</b> keeps the ${b.pool === 'max' ? 'largest value' : 'mean'} of every ${b.poolSize}×${b.poolSize} block, shrinking the maps from ${before}×${before} to ${after}×${after}.`;
  const order =
    b.pool === 'none'
      ? ''
      : b.order === 'activation-then-pool'
        ? ' Here the non-linearity is applied first and the pooling second (the lesson pools first).'
        : ' The pooling comes first, then the non-linearity, as in the lesson.';
  const dropout =
    b.dropout > 0
      ? `<p>During training, <b>dropout</b> zeroes a random ${Math.round(100 * b.dropout)}% of these values at every step (and scales the rest up), so that no filter can rely on any other; the maps here are drawn without it, as the trained network uses them.</p>`
      : '';
  return `<p>Each of the ${b.filters} maps is one ${b.size}×${b.size} filter's response to ${source}, after ${escapeHtml(blockSteps(b))}.</p>
    <p>${pool}${order} The non-linearity: ${act}; without such a bend, stacked layers could only compute one linear function.</p>${dropout}`;
}

/** Spatial size entering conv block `i` (i = number of blocks: their output). */
function blockSize(net: NetworkConfig, i: number): number {
  let s = net.input.height;
  for (let j = 0; j < i; j++) s = blockOutputSize(s, net.conv[j]);
  return s;
}

// -------------------------------------------------------------------------------------------------
// The page
// -------------------------------------------------------------------------------------------------

function networkRows(net: NetworkConfig): string[] {
  const rows = [`input ${net.input.height}×${net.input.width}×${net.input.channels}`];
  let size = net.input.height;
  net.conv.forEach((b, i) => {
    size = blockOutputSize(size, b);
    const dropout = b.dropout > 0 ? ` → dropout ${b.dropout}` : '';
    rows.push(`conv${i + 1}: ${b.filters} filters, ${b.padding} padding: ${blockSteps(b)}${dropout} → ${size}×${size}×${b.filters}`);
  });
  rows.push(`flatten → ${count(flattenSize(net))}`);
  net.dense.forEach((d, i) => {
    const last = i === net.dense.length - 1;
    const act = d.activation === 'linear' ? '' : ` → ${d.activation === 'relu' ? 'ReLU' : d.activation}`;
    const dropout = d.dropout > 0 ? ` → dropout ${d.dropout}` : '';
    rows.push(`fc${i + 1}: ${d.units} units${act}${dropout}${last ? ' (logits) → softmax' : ''}`);
  });
  return rows;
}

function parameterLine(net: NetworkConfig): string {
  const params = weightSpecs(net).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  return `${count(params)} parameters, initialised as weights ~ truncated normal(0, ${net.weightStddev}) and biases = ${net.biasInit}.`;
}

function trainRows(train: TrainConfig | undefined, m: Partial<Metrics> | undefined): [string, string][] {
  const rows: [string, string][] = [];
  if (train) {
    rows.push(['iterations', `${count(train.iterations)}, batches of ${train.batchSize} images${isNum(m?.epochs) ? ` (${m.epochs.toFixed(2)} epochs)` : ''}`]);
    // metrics.json files written before optimizer blocks existed hold Adam's fields on `train` itself.
    const legacy = train as unknown as {
      learningRate?: number;
      finalLearningRate?: number;
      schedule?: string;
      beta1?: number;
      beta2?: number;
      epsilon?: number;
    };
    if (train.optimizer) rows.push(['optimiser', describeOptimizer(train.optimizer)]);
    else if (isNum(legacy.learningRate)) {
      const lr = legacy.schedule === 'cosine' ? `${legacy.learningRate} → ${legacy.finalLearningRate} (cosine)` : `${legacy.learningRate} (constant)`;
      rows.push(['optimiser', `Adam, learning rate ${lr}, β₁ ${legacy.beta1}, β₂ ${legacy.beta2}, ε ${legacy.epsilon}`]);
    }
    if (train.augment) rows.push(['augmentation', describeAugment(train.augment)]);
    rows.push(['seed', String(train.seed)]);
  }
  if (m?.preset) rows.push(['preset', String(m.preset)]);
  if (m?.backend) rows.push(['backend', String(m.backend)]);
  if (isNum(m?.trainSeconds)) {
    const speed = isNum(m.trainImagesPerSecond) ? ` (${count(Math.round(m.trainImagesPerSecond))} images/s)` : '';
    rows.push(['training time', `${m.trainSeconds.toFixed(1)} s${speed}`]);
  }
  if (typeof m?.createdAt === 'string') rows.push(['trained at', m.createdAt]);
  return rows;
}

function summaryCards(m: Partial<Metrics> | undefined, confusion: number[][]): string {
  const cards: [string, string, string][] = [];
  const total = confusion.flat().reduce((a, b) => a + b, 0);
  const correct = confusion.reduce((a, row, i) => a + row[i], 0);
  if (isNum(m?.testAccuracy)) {
    const of = isNum(m.testCorrect) && isNum(m.testTotal) ? `${count(m.testCorrect)} / ${count(m.testTotal)}` : '';
    cards.push(['test accuracy', pct(m.testAccuracy), of]);
  } else if (total > 0) {
    cards.push(['test accuracy', pct(correct / total), `${count(correct)} / ${count(total)}`]);
  }
  if (isNum(m?.validationAccuracy)) cards.push(['validation accuracy', pct(m.validationAccuracy), '']);
  if (isNum(m?.iterations)) cards.push(['iterations', count(m.iterations), '']);
  if (isNum(m?.trainSeconds)) cards.push(['training time', `${m.trainSeconds.toFixed(1)} s`, '']);
  return cards.map(([k, v, sub]) => `<div class="card"><div class="k">${k}</div><div class="v">${v}</div><div class="sub">${sub}</div></div>`).join('\n');
}

function classTable(confusion: number[][]): string {
  const rows = perClass(confusion)
    .map(
      (c) =>
        `<tr><td>${c.cls}</td><td>${pct(c.precision, 1)}</td><td>${pct(c.recall, 1)}</td><td>${count(c.support)}</td>` +
        `<td><div class="bar" style="width:${(100 * c.recall).toFixed(1)}%"></div></td></tr>`,
    )
    .join('\n');
  return `<table class="classes"><thead><tr><th>digit</th><th>precision</th><th>recall</th><th>test images</th><th class="wide"></th></tr></thead>
<tbody>
${rows}
</tbody></table>`;
}

function figureSection(f: Figure, net: NetworkConfig): string {
  const id = f.file.replace(/\.png$/, '');
  const src = `data:image/png;base64,${f.png.toString('base64')}`;
  return `<section id="${id}">
<h2>${escapeHtml(heading(f))}</h2>
<div class="pair">
<figure><img src="${src}" width="${f.width}" height="${f.height}" alt="${escapeHtml(heading(f))}"><figcaption>${escapeHtml(f.file)}</figcaption></figure>
<div class="explain">${explanation(f, net)}</div>
</div>
</section>`;
}

const CSS = `
:root { color-scheme: light; }
body { font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1a1a1a; margin: 0; background: #fafafa; }
main { max-width: 1500px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0 0 12px; }
.muted { color: #5f6368; }
code { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; background: #eef0f2; padding: 1px 4px; border-radius: 3px; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 8px; padding: 20px 24px; margin: 20px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { background: #fff; border: 1px solid #e3e3e3; border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.card .k { font-size: 12px; color: #5f6368; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 24px; font-weight: 600; }
.card .sub { font-size: 12px; color: #5f6368; min-height: 1em; }
.config { display: flex; flex-wrap: wrap; gap: 32px; }
.config > div { flex: 1 1 420px; }
.config ol { margin: 0; padding-left: 20px; }
table { border-collapse: collapse; }
td, th { padding: 4px 12px 4px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; border-bottom: 1px solid #ccc; }
.kv td:first-child { color: #5f6368; white-space: nowrap; }
.classes td:not(:last-child), .classes th:not(.wide) { text-align: right; padding-right: 18px; font-variant-numeric: tabular-nums; }
.classes td:last-child { width: 220px; }
.bar { height: 10px; background: #4292c6; border-radius: 2px; }
.pair { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
figure { margin: 0; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #5f6368; margin-top: 4px; }
.explain { flex: 1 1 300px; max-width: 62ch; }
.explain p:first-child { margin-top: 0; }
.pos { color: #b2182b; font-weight: 600; }
.neg { color: #2166ac; font-weight: 600; }
.notice { background: #fff8e1; border: 1px solid #f0d98c; border-radius: 8px; padding: 10px 16px; }
nav a { margin-right: 14px; white-space: nowrap; }
.confusion-links td, .confusion-links th { text-align: center; padding: 4px 8px; min-width: 28px; font-variant-numeric: tabular-nums; }
.confusion-links td.diag { color: #5f6368; } .confusion-links td.zero { color: #c8c8c8; }
.confusion-links a { color: #1a1a1a; font-weight: 600; }
.error-cell { margin-top: 18px; } .error-cell h3 { font-size: 15px; }
.mistakes { display: flex; flex-wrap: wrap; gap: 14px 18px; }
.mistakes img { image-rendering: pixelated; border: 2px solid #c62828; max-width: 100%; height: auto; }
.mistakes figcaption { text-align: center; font-variant-numeric: tabular-nums; }
.error-cell:target { outline: 3px solid #c62828; outline-offset: 6px; border-radius: 4px; }
`;

export function reportHtml(r: ReportInput): string {
  const m = r.metrics;
  const title = `convlab report: ${r.modelDir}`;
  const nav = r.figures.map((f) => `<a href="#${f.file.replace(/\.png$/, '')}">${escapeHtml(heading(f))}</a>`).join(' ');
  const notices: string[] = [];
  if (r.metricsMissing) notices.push(`No training metrics: ${escapeHtml(r.metricsMissing)}.`);
  for (const s of r.skipped) notices.push(`Not drawn: <code>${escapeHtml(s.file)}</code>, because ${escapeHtml(s.reason)}.`);
  const trainTable = trainRows(r.train, m)
    .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`)
    .join('\n');
  const figures = r.figures.map((f) => figureSection(f, r.net));
  const confusionAt = r.figures.findIndex((f) => f.kind === 'confusion');
  const table = `<section id="per-class">
<h2>Precision and recall per digit</h2>
<div class="pair"><div>${classTable(r.confusion)}
<p class="muted">Test set; confusion matrix from ${escapeHtml(r.confusionSource)}.</p></div>
<div class="explain"><p><b>Recall</b> of a digit: of the test images of that digit, the share the network
recognised (the diagonal cell divided by its row's total). <b>Precision</b>: of the images the network called
that digit, the share that really were (the diagonal cell divided by its column's total). A digit with low
precision is the network's favourite wrong answer; one with low recall is the hardest to recognise.</p></div></div>
</section>`;
  figures.splice(confusionAt >= 0 ? confusionAt + 1 : figures.length, 0, table, ...(r.errorsHtml ? [r.errorsHtml] : []));

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>Looking inside the network</h1>
<div class="muted">Model <code>${escapeHtml(r.modelDir)}</code> · report generated ${escapeHtml(r.generatedAt.replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC'))} by <code>convlab visualize</code></div>
<div class="cards">
${summaryCards(m, r.confusion)}
</div>
${notices.length > 0 ? `<p class="notice">${notices.join('<br>')}</p>` : ''}
<nav>${nav} <a href="#per-class">Precision and recall</a>${r.errorsHtml ? ' <a href="#confusion-links">Mistakes, cell by cell</a>' : ''}</nav>
</header>
<section id="config">
<h2>Configuration</h2>
<div class="config">
<div><h3>Network</h3><ol>
${networkRows(r.net)
  .map((row) => `<li>${escapeHtml(row)}</li>`)
  .join('\n')}
</ol><p class="muted">${escapeHtml(parameterLine(r.net))}</p></div>
<div><h3>Training</h3>${trainTable ? `<table class="kv">${trainTable}</table>` : '<p class="muted">Not recorded with this model.</p>'}</div>
</div>
</section>
${figures.join('\n')}
</main>
</body>
</html>
`;
}
