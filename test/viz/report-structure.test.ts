/**
 * report.html's structure, not its keywords: the sections in order, each figure in its own section under its
 * own heading with its own image, a navigation link per section, the summary cards, and the per-class table's
 * numbers worked out by hand from the confusion matrix (recall = diagonal / row, precision = diagonal / column).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { presets } from '../../src/model/config.ts';
import { reportHtml, type Figure } from '../../src/viz/report.ts';

const png = (n: number) => Buffer.from([0x89, 0x50, 0x4e, 0x47, n]);
const figures: Figure[] = [
  { file: 'curves.png', kind: 'curves', width: 11, height: 12, png: png(1) },
  { file: 'samples.png', kind: 'samples', width: 13, height: 14, png: png(2) },
  { file: 'conv1-weights.png', kind: 'weights', layer: 1, channel: 0, width: 10, height: 10, png: png(3) },
  { file: 'conv2-weights-ch1.png', kind: 'weights', layer: 2, channel: 1, width: 10, height: 10, png: png(4) },
  { file: 'conv1-maps.png', kind: 'maps', layer: 1, width: 10, height: 10, png: png(5) },
  { file: 'confusion.png', kind: 'confusion', width: 10, height: 10, png: png(6) },
  { file: 'errors.png', kind: 'errors', width: 10, height: 10, png: png(7) },
];
const headings = [
  'Learning curves',
  'Test images and predictions',
  'conv1: the filters',
  'conv2: the filters, input channel 1',
  'conv1: the feature maps',
  'Confusion matrix',
  'Mistakes',
];
// Class 0: 8 of 10 right, never predicted wrongly; class 1: all 10 right, but 2 zeros called 1; class 2: 3 of 6.
const confusion = [
  [8, 2, 0],
  [0, 10, 0],
  [1, 2, 3],
];
const html = reportHtml({
  modelDir: 'runs/a',
  net: presets.seed.network,
  train: presets.seed.train,
  metrics: { testAccuracy: 21 / 26, testCorrect: 21, testTotal: 26, validationAccuracy: 0.75, iterations: 400, trainSeconds: 12.34 },
  confusion,
  confusionSource: 'metrics.json',
  figures,
  skipped: [],
  generatedAt: '2025-01-01T00:00:00.000Z',
});
const sections = [...html.matchAll(/<section id="([^"]+)">\n<h2>([^<]*)<\/h2>([\s\S]*?)<\/section>/g)].map((m) => ({ id: m[1], heading: m[2], body: m[3] }));

test('sections in order: configuration, then each figure, the per-class table right after the confusion matrix', () => {
  assert.deepEqual(
    sections.map((s) => s.id),
    ['config', 'curves', 'samples', 'conv1-weights', 'conv2-weights-ch1', 'conv1-maps', 'confusion', 'per-class', 'errors'],
  );
  assert.equal(html.match(/<section /g)?.length, sections.length, 'a section not in the expected shape');
  assert.equal(html.match(/<h1>/g)?.length, 1);
});

test('each figure section holds exactly its own image, under its own heading, captioned with its file', () => {
  figures.forEach((f, i) => {
    const s = sections.find((x) => x.id === f.file.replace(/\.png$/, ''))!;
    assert.equal(s.heading, headings[i]);
    const images = [...s.body.matchAll(/<img src="data:image\/png;base64,([^"]+)" width="(\d+)" height="(\d+)" alt="([^"]*)">/g)];
    assert.equal(images.length, 1, `${f.file}: ${images.length} images`);
    assert.deepEqual(Buffer.from(images[0][1], 'base64'), f.png, `${f.file}: another figure's image`);
    assert.deepEqual([Number(images[0][2]), Number(images[0][3]), images[0][4]], [f.width, f.height, headings[i]]);
    assert.match(s.body, new RegExp(`<figcaption>${f.file.replace('.', '\\.')}</figcaption>`));
  });
  assert.equal(sections.find((s) => s.id === 'config')!.body.includes('<img'), false);
});

test('navigation: one link per figure and the table, each to a section that exists, with its heading', () => {
  const nav = /<nav>([\s\S]*?)<\/nav>/.exec(html)![1];
  const links = [...nav.matchAll(/<a href="#([^"]+)">([^<]*)<\/a>/g)].map((m) => [m[1], m[2]]);
  assert.deepEqual(links, [...figures.map((f, i) => [f.file.replace(/\.png$/, ''), headings[i]]), ['per-class', 'Precision and recall']]);
});

test('summary cards and the per-class table carry the numbers of the metrics and the confusion matrix', () => {
  const cards = [...html.matchAll(/<div class="card"><div class="k">([^<]*)<\/div><div class="v">([^<]*)<\/div><div class="sub">([^<]*)<\/div><\/div>/g)].map(
    (m) => m.slice(1),
  );
  assert.deepEqual(cards, [
    ['test accuracy', '80.77%', '21 / 26'],
    ['validation accuracy', '75.00%', ''],
    ['iterations', '400', ''],
    ['training time', '12.3 s', ''],
  ]);
  const table = sections.find((s) => s.id === 'per-class')!.body;
  const rows = [
    ...table.matchAll(
      /<tr><td>(\d+)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td><div class="bar" style="width:([\d.]+)%"><\/div><\/td><\/tr>/g,
    ),
  ].map((m) => m.slice(1));
  // digit, precision (diagonal / column), recall (diagonal / row), images of that digit, bar width = recall.
  assert.deepEqual(rows, [
    ['0', '88.9%', '80.0%', '10', '80.0'],
    ['1', '71.4%', '100.0%', '10', '100.0'],
    ['2', '100.0%', '50.0%', '6', '50.0'],
  ]);
});
