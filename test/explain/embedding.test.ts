/**
 * The embedding map: seeded UMAP gives the same map every time; clusters in the data stay apart; the
 * restored map's transform places a fitted vector next to where the fit put it, and deterministically;
 * the cache in the run folder is written once, read back, and refitted when the weights change.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { loadMnist, subset } from '../../src/data/mnist.ts';
import { loadParams } from '../../src/model/load.ts';
import { disposeParams } from '../../src/model/cnn.ts';
import { fitEmbedding, Projector, type EmbeddingParams } from '../../src/explain/embedding.ts';
import { EMBEDDING_FILE, loadOrFitEmbedding } from '../../src/viz/embedding.ts';
import { fixtureModelDir } from '../helpers/fixture-model.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-embedding-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 3 well-separated Gaussian clusters of 80 points in 16 dimensions. */
function clusters(): { features: Float32Array; labels: number[] } {
  const rng = new Rng(1);
  const dims = 16,
    per = 80;
  const features = new Float32Array(3 * per * dims);
  const labels: number[] = [];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < per; i++) {
      labels.push(c);
      for (let d = 0; d < dims; d++) features[(c * per + i) * dims + d] = (d % 3 === c ? 6 : 0) + rng.normal();
    }
  }
  return { features, labels };
}

const small: EmbeddingParams = { count: 240, nNeighbors: 15, minDist: 0.1, nEpochs: 150, seed: 7 };

test('seeded UMAP: the same map twice, clusters apart, and transform places points where the fit did', () => {
  const { features, labels } = clusters();
  const meta = { key: 'k', layer: 'test', labels, predicted: labels };
  const a = fitEmbedding(features, 16, meta, small);
  const b = fitEmbedding(features, 16, meta, small);
  assert.deepEqual(a.points, b.points, 'same seed, same map');
  const c = fitEmbedding(features, 16, meta, { ...small, seed: 8 });
  assert.notDeepEqual(a.points, c.points, 'the seed matters');

  // each point is nearer its own cluster's centre than any other cluster's
  const centre = (k: number) => {
    const pts = a.points.filter((_, i) => labels[i] === k);
    return [pts.reduce((s, p) => s + p[0], 0) / pts.length, pts.reduce((s, p) => s + p[1], 0) / pts.length];
  };
  const centres = [0, 1, 2].map(centre);
  const dist = (p: number[], q: number[]) => Math.hypot(p[0] - q[0], p[1] - q[1]);
  const misplaced = a.points.filter((p, i) => centres.some((q, k) => k !== labels[i] && dist(p, q) < dist(p, centres[labels[i]]))).length;
  assert.equal(misplaced, 0);

  // the file survives JSON, and its transform puts fitted vectors next to their fitted place
  const projector = new Projector(JSON.parse(JSON.stringify(a)));
  const spread = Math.max(...centres.flatMap((p) => centres.map((q) => dist(p, q))));
  for (const i of [0, 100, 200]) {
    const v = features.subarray(i * 16, (i + 1) * 16);
    const p = projector.project(v);
    assert.deepEqual(projector.project(v), p, 'deterministic');
    assert.ok(
      dist(p, a.points[i]) < 0.15 * spread,
      `point ${i} projected ${dist(p, a.points[i]).toFixed(3)} away from its fitted place (spread ${spread.toFixed(2)})`,
    );
    assert.ok(dist(p, centres[labels[i]]) < Math.min(...centres.filter((_, k) => k !== labels[i]).map((q) => dist(p, q))), 'it lands in its own cluster');
  }
  const neighbours = projector.neighbours(features.subarray(0, 16));
  assert.equal(neighbours.indices[0], 0, 'a fitted vector is its own nearest neighbour');
  assert.equal(neighbours.indices.length, 15);
});

test('the cache: fitted once into the run folder (atomically), read back, refitted when the weights change', async () => {
  await useBackend('wasm');
  const model = join(dir, 'model');
  await cp(await fixtureModelDir(), model, { recursive: true });
  await rm(join(model, EMBEDDING_FILE), { force: true });
  const { net, params } = await loadParams(model);
  const test = subset((await loadMnist()).test, 0, 300);
  const options = { params: { count: 300, nEpochs: 60 } };
  try {
    const first = await loadOrFitEmbedding(model, net, params, test, options);
    assert.equal(first.cached, false);
    assert.equal(first.file.count, 300);
    assert.equal(first.file.layer, 'fc1');
    assert.equal(first.file.dims, 128);
    assert.ok((await readdir(model)).includes(EMBEDDING_FILE));
    assert.deepEqual(
      (await readdir(model)).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left behind',
    );
    const again = await loadOrFitEmbedding(model, net, params, test, options);
    assert.equal(again.cached, true);
    assert.deepEqual(again.file.points, first.file.points);
    // other weights: the cache is stale
    const weights = await readFile(join(model, 'weights.bin'));
    weights[100] ^= 1;
    await writeFile(join(model, 'weights.bin'), weights);
    assert.equal((await loadOrFitEmbedding(model, net, params, test, options)).cached, false);
    // a corrupt cache is refitted, not an error
    await writeFile(join(model, EMBEDDING_FILE), '{not json');
    assert.equal((await loadOrFitEmbedding(model, net, params, test, options)).cached, false);
  } finally {
    disposeParams(params);
  }
});
