/**
 * The convolution view's arithmetic: for every kind of conv block a config can describe, the window ·
 * filter + bias → pool → activation that explainCell writes out ends at exactly the activation the network
 * computed (cpu backend), and the receptive field is exactly the set of input pixels the cell depends on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { presets, type ConvBlockConfig, type NetworkConfig } from '../../src/model/config.ts';
import { disposeParams, forward, initParams, type Activations, type Params } from '../../src/model/cnn.ts';
import { explainCell, layerSizes, receptiveField, type Layer } from '../../src/explain/cell.ts';

const lesson = presets.seed.network;
const block = (over: Partial<ConvBlockConfig>): ConvBlockConfig => ({ ...lesson.conv[0], ...over });
const small = (conv: ConvBlockConfig[], input = lesson.input): NetworkConfig => ({
  ...lesson,
  input,
  conv,
  dense: [{ units: 10, activation: 'linear', dropout: 0 }],
});

const networks: Record<string, NetworkConfig> = {
  lesson,
  'avg pool, activation first, tanh': small([
    block({ filters: 4, pool: 'avg', order: 'activation-then-pool', activation: 'tanh' }),
    block({ filters: 3, size: 3, pool: 'avg' }),
  ]),
  'strided conv, no pool, valid': small([
    block({ filters: 4, stride: 2, pool: 'none', padding: 'valid' }),
    block({ filters: 3, size: 3, stride: 2, pool: 'none', padding: 'same' }),
  ]),
  'odd sizes: pool 3 over 24, sigmoid': small([block({ filters: 5, padding: 'valid', poolSize: 3, activation: 'sigmoid' })]),
  'rgb input, avg pool over 7 (SAME padding)': small([block({ filters: 4, size: 3 }), block({ filters: 3, size: 3, stride: 2, pool: 'avg' })], {
    height: 27,
    width: 27,
    channels: 3,
  }),
};

function randomParams(net: NetworkConfig, seed: number): Params {
  const p = initParams(net, new Rng(seed));
  for (const v of p.values()) v.assign(tf.tidy(() => tf.mul(v, 4)));
  return p;
}

function randomImage(net: NetworkConfig, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: net.input.height * net.input.width * net.input.channels }, () => rng.next());
}

/** Every block's output for one image: [h, w, c] layers. */
function layersOf(net: NetworkConfig, p: Params, x: Float32Array): Layer[] {
  const { height, width, channels } = net.input;
  const maps = tf.tidy(() => {
    const record: Activations = { conv: [], dense: [] };
    forward(net, p, tf.tensor4d(x, [1, height, width, channels]), record);
    return record.conv;
  });
  const out = maps.map((t) => ({ height: t.shape[1], width: t.shape[2], channels: t.shape[3], data: t.dataSync() as Float32Array }));
  tf.dispose(maps);
  return [{ height, width, channels, data: x }, ...out];
}

test('explainCell ends at the activation the network computed, for every kind of block', async () => {
  await useBackend('cpu');
  for (const [name, net] of Object.entries(networks)) {
    const p = randomParams(net, 1);
    const x = randomImage(net, 2);
    const layers = layersOf(net, p, x);
    assert.deepEqual(
      layerSizes(net).map((s) => [s.height, s.width]),
      layers.map((l) => [l.height, l.width]),
      `${name}: layer sizes`,
    );
    const rng = new Rng(3);
    net.conv.forEach((b, i) => {
      const kernel = p.get(`conv${i + 1}/kernel`)!.dataSync() as Float32Array;
      const bias = p.get(`conv${i + 1}/bias`)!.dataSync() as Float32Array;
      const out = layers[i + 1];
      // the corners (padding, clipped pool windows) and random cells
      const cells = [
        [0, 0],
        [out.height - 1, out.width - 1],
        [0, out.width - 1],
        ...Array.from({ length: 12 }, () => [rng.int(out.height), rng.int(out.width)]),
      ];
      for (const [r, c] of cells) {
        const ch = rng.int(b.filters);
        const e = explainCell(net, i, layers[i], kernel, bias, r, c, ch);
        const want = out.data[(r * out.width + c) * out.channels + ch];
        assert.ok(
          Math.abs(e.value - want) <= 1e-5 * Math.max(1, Math.abs(want)),
          `${name}, block ${i + 1}, cell (${r},${c},${ch}): explained ${e.value}, network ${want}`,
        );
        for (const pos of e.positions) {
          const s = pos.products.reduce((a, v) => a + v, 0);
          assert.ok(Math.abs(s - pos.sum) < 1e-5 && Math.abs(pos.channelSums.reduce((a, v) => a + v, 0) - pos.sum) < 1e-5);
          assert.equal(pos.value, pos.sum + pos.bias);
        }
        if (b.pool === 'max') assert.equal(e.pooled, Math.max(...e.positions.map((q) => q.value)));
      }
    });
    disposeParams(p);
  }
});

test('the receptive field is exactly the input pixels the cell depends on', async () => {
  await useBackend('cpu');
  for (const [name, net] of Object.entries(networks)) {
    if (net.input.channels !== 1) continue;
    const p = randomParams(net, 4);
    const x = randomImage(net, 5);
    const base = layersOf(net, p, x);
    const last = net.conv.length - 1;
    const out = base[last + 1];
    const [r, c] = [Math.floor(out.height / 2), Math.floor(out.width / 2)];
    const rf = receptiveField(net, last, r, c);
    const at = (layers: Layer[]) => Array.from({ length: out.channels }, (_, ch) => layers[last + 1].data[(r * out.width + c) * out.channels + ch]);
    const want = at(base);
    const { height, width } = net.input;
    let insideChanged = 0,
      inside = 0;
    for (let y = 0; y < height; y++) {
      for (let xx = 0; xx < width; xx++) {
        const isInside = y >= rf.rows.from && y <= rf.rows.to && xx >= rf.cols.from && xx <= rf.cols.to;
        if (!isInside && (y + xx) % 3 !== 0) continue; // every pixel inside, a third of those outside
        const poked = x.slice();
        poked[y * width + xx] += 5;
        const got = at(layersOf(net, p, poked));
        const moved = got.some((v, k) => Math.abs(v - want[k]) > 1e-6);
        if (isInside) {
          inside++;
          if (moved) insideChanged++;
        } else
          assert.ok(!moved, `${name}: pixel (${y},${xx}) outside the field [${rf.rows.from}..${rf.rows.to}]x[${rf.cols.from}..${rf.cols.to}] moved the cell`);
      }
    }
    // the field's border pixels all matter: a field one pixel too large would leave its edge row unused
    assert.ok(insideChanged > 0.5 * inside, `${name}: only ${insideChanged}/${inside} pixels inside the field matter`);
    for (const edge of [rf.rows.from, rf.rows.to]) {
      const any = [...Array(width).keys()]
        .filter((xx) => xx >= rf.cols.from && xx <= rf.cols.to)
        .some((xx) => {
          const poked = x.slice();
          poked[edge * width + xx] += 5;
          return at(layersOf(net, p, poked)).some((v, k) => Math.abs(v - want[k]) > 1e-6);
        });
      assert.ok(any, `${name}: edge row ${edge} of the field does not matter: the field is too large`);
    }
    disposeParams(p);
  }
});

test('explainCell refuses cells outside the map', () => {
  const layer: Layer = { height: 28, width: 28, channels: 1, data: new Float32Array(784) };
  const k = new Float32Array(5 * 5 * 16),
    b = new Float32Array(16);
  assert.throws(() => explainCell(lesson, 0, layer, k, b, 14, 0, 0), /outside block 1/);
  assert.throws(() => explainCell(lesson, 0, layer, k, b, 0, 0, 16), /outside block 1/);
  assert.throws(() => explainCell(lesson, 2, layer, k, b, 0, 0, 0), /no conv block 3/);
});
