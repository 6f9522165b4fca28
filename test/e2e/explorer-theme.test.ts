/**
 * The page follows the system's light or dark preference, canvases included: Chromium emulates
 * `prefers-color-scheme` and the test reads the training charts' pixels (background, grid, legend swatch)
 * against the theme's colours, and checks that a chart redraws when the preference changes while the page
 * is open. Leaves test-artifacts/explorer-{light,dark}.png.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { browserSkip, launchBrowser, servePage } from '../helpers/browser.ts';

const skip = browserSkip;
const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

let app: FastifyInstance;
let browser: Browser;
let url: string;

before(async () => {
  if (skip) return;
  ({ app, url } = await servePage());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.close();
});

type Rgb = [number, number, number];
const luminance = ([r, g, b]: Rgb) => (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;

/** Pixels of the loss chart: a background corner, the legend's first swatch, and what the theme says they should be. */
async function chartColours(page: Page): Promise<{ corner: Rgb; swatch: Rgb; want: { bg: Rgb; series: Rgb; card: Rgb }; distinct: number }> {
  return page.evaluate(() => {
    const c = document.getElementById('loss-chart') as HTMLCanvasElement;
    const ctx = c.getContext('2d')!;
    const dpr = c.width / c.clientWidth;
    const px = (x: number, y: number) => Array.from(ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data.slice(0, 3)) as Rgb;
    // a CSS colour → RGB, through a 1x1 canvas
    const probe = document.createElement('canvas').getContext('2d')!;
    const rgb = (css: string): Rgb => {
      probe.clearRect(0, 0, 1, 1);
      probe.fillStyle = css;
      probe.fillRect(0, 0, 1, 1);
      return Array.from(probe.getImageData(0, 0, 1, 1).data.slice(0, 3)) as Rgb;
    };
    const style = getComputedStyle(c);
    const all = ctx.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set<number>();
    for (let i = 0; i < all.length; i += 4) colours.add((all[i] << 16) | (all[i + 1] << 8) | all[i + 2]);
    return {
      corner: px(2, c.clientHeight - 2),
      swatch: px(48 + 5, 8.5), // the legend's first swatch: x 48..58, y 7..10 (views/chart.ts)
      want: {
        bg: rgb(style.getPropertyValue('--chart-bg').trim()),
        series: rgb(style.getPropertyValue('--series-1').trim()),
        card: rgb(getComputedStyle(c.closest('.card')!).backgroundColor),
      },
      distinct: colours.size,
    };
  });
}

async function open(colorScheme: 'light' | 'dark'): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1360, height: 1000 }, colorScheme });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // tsx keeps function names with a __name helper, which the functions sent to page.evaluate carry along
  await page.addInitScript('globalThis.__name = (f) => f');
  await page.goto(`${url}?backend=wasm`);
  await page.waitForFunction(() => document.body.dataset.ready !== 'false', null, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.ready), 'true');
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))); // the charts draw on the next frame
  return { page, errors };
}

const near = (a: Rgb, b: Rgb, tol = 3) => a.every((v, i) => Math.abs(v - b[i]) <= tol);

test('the training charts follow prefers-color-scheme: light and dark backgrounds, series and grid in the theme', { skip }, async () => {
  const seen: Record<string, Awaited<ReturnType<typeof chartColours>>> = {};
  for (const scheme of ['light', 'dark'] as const) {
    const { page, errors } = await open(scheme);
    const c = await chartColours(page);
    seen[scheme] = c;
    assert.ok(near(c.corner, c.want.bg), `${scheme}: the chart's background ${c.corner} is the theme's ${c.want.bg}`);
    assert.ok(near(c.swatch, c.want.series), `${scheme}: the first series is drawn in the theme's colour ${c.want.series}, got ${c.swatch}`);
    assert.ok(c.distinct >= 3, `${scheme}: the chart has a background, grid lines and text (${c.distinct} colours)`);
    if (scheme === 'light') {
      assert.ok(luminance(c.corner) > 0.9, `light: the chart is light (${c.corner})`);
      assert.ok(luminance(c.want.card) > 0.9, 'light: the cards are light');
    } else {
      assert.ok(luminance(c.corner) < 0.15, `dark: the chart is dark (${c.corner})`);
    }
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}explorer-${scheme}.png`, fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  }
  assert.notDeepEqual(seen.light.swatch, seen.dark.swatch, 'the series colour changes with the theme');

  // training in the light theme: the curve itself is drawn in the theme's series colour
  {
    const { page, errors } = await open('light');
    await page.locator('#train-count').selectOption('1000');
    await page.locator('#train-start').click();
    await page.waitForFunction(() => Number(document.getElementById('train-status')?.dataset.step ?? 0) >= 15, null, { timeout: 120_000 });
    await page.locator('#train-pause').click();
    await page.waitForFunction(() => /paused/.test(document.getElementById('train-status')?.textContent ?? ''));
    const line = await page.evaluate(() => {
      const c = document.getElementById('loss-chart') as HTMLCanvasElement;
      const probe = document.createElement('canvas').getContext('2d')!;
      probe.fillStyle = getComputedStyle(c).getPropertyValue('--series-1').trim();
      probe.fillRect(0, 0, 1, 1);
      const want = probe.getImageData(0, 0, 1, 1).data;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - want[0]) + Math.abs(d[i + 1] - want[1]) + Math.abs(d[i + 2] - want[2]) < 30) n++;
      return n;
    });
    assert.ok(line > 40, `the loss curve is drawn in the light theme's colour (${line} pixels)`);
    await page.locator('.train-card').screenshot({ path: `${artifacts}explorer-light-train.png` });
    assert.deepEqual(errors, []);
    await page.close();
  }

  // the preference changes while the page is open: the canvas redraws in the new theme
  const { page } = await open('dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.waitForFunction(() => {
    const c = document.getElementById('loss-chart') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(2, c.height - 2, 1, 1).data;
    return d[0] > 230 && d[1] > 230 && d[2] > 230;
  });
  await page.close();
});
