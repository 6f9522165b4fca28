/** `convlab predict` as a user runs it: WebP, --show, --json --preprocessed, warnings, bad pictures (exit 2). */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { convlab } from '../helpers/cli.ts';

const MODEL = fileURLToPath(new URL('../fixtures/default-model/', import.meta.url));

/** A blue "7" on tinted paper, or `n` of them side by side. */
function sevens(n: number): Buffer {
  const c = createCanvas(200 * n, 240);
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#eee4c8';
  ctx.fillRect(0, 0, 200 * n, 240);
  ctx.strokeStyle = '#1a2a8a';
  ctx.lineWidth = 16;
  for (let k = 0; k < n; k++) {
    ctx.beginPath();
    ctx.moveTo(200 * k + 50, 50);
    ctx.lineTo(200 * k + 150, 50);
    ctx.lineTo(200 * k + 85, 200);
    ctx.stroke();
  }
  return c.toBuffer('image/webp', 85);
}

test('predict reads WebP, writes --show, adds "preprocessed" and warns about two digits; bad pictures exit 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'convlab-predict-'));
  try {
    await writeFile(join(dir, 'seven.webp'), sevens(1));
    await writeFile(join(dir, 'two.webp'), sevens(2));
    const show = join(dir, 'show');
    const r = convlab('predict', '--model', MODEL, '--json', '--preprocessed', '--show', show, join(dir, 'seven.webp'), join(dir, 'two.webp'));
    assert.equal(r.code, 0, r.stderr);
    const [one, two] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(one.class, 7);
    assert.equal(one.preprocessed.length, 784);
    assert.deepEqual(one.warnings, []);
    assert.ok(
      two.warnings.some((w: string) => w.includes('2 digits side by side')),
      JSON.stringify(two.warnings),
    );
    const png = await loadImage(join(show, 'seven.show.png'));
    assert.ok(png.width > 280 && png.height >= 280, `${png.width}x${png.height}`);

    const text = convlab('predict', '--model', MODEL, join(dir, 'two.webp'));
    assert.equal(text.code, 0);
    assert.match(text.stderr, /^convlab: warning: .*two\.webp: the picture seems to hold 2 digits side by side/m);

    await writeFile(join(dir, 'cut.webp'), sevens(1).subarray(0, 200));
    const white = createCanvas(50, 50);
    white.getContext('2d').fillStyle = '#fff';
    white.getContext('2d').fillRect(0, 0, 50, 50);
    await writeFile(join(dir, 'white.png'), white.toBuffer('image/png'));
    for (const [file, message] of [
      ['cut.webp', /corrupt WebP image \(truncated/],
      ['white.png', /no digit found/],
    ] as const) {
      const bad = convlab('predict', '--model', MODEL, join(dir, file));
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, message);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    }
    assert.equal(convlab('predict', '--model', MODEL, '--preprocessed', join(dir, 'seven.webp')).code, 2, '--preprocessed needs --json');
    assert.ok(existsSync(show));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
