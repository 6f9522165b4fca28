/**
 * Builds the page (web/) with Vite into web/dist, on demand rather than at `npm install` (which stays
 * offline-safe and quick). `convlab serve` calls `ensureWebBuild()`: it rebuilds only when the page's
 * sources, the src/ files it shares, or the Vite/TensorFlow.js versions changed since the last build,
 * which it records as a hash in web/dist/.build-key. The build goes to a temporary folder that replaces
 * web/dist in one rename, so a server never sees half a build.
 *
 * An installed package has no page sources and no Vite (a development dependency): `npm pack` builds
 * web/dist into the tarball (`prepack`), and that prebuilt page is served as it is.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConvlabError } from '../errors.ts';

export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));
export const WEB_DIST = join(WEB_ROOT, 'dist');
// The TypeScript sources, whether this file runs from src/serve/ (tsx) or from dist/serve/ (built):
// both give the same key, so the tests and the built CLI do not rebuild each other's page.
const SRC_ROOT = fileURLToPath(new URL('../../src/', import.meta.url));
const KEY_FILE = '.build-key';

export interface WebBuild {
  /** The folder to serve (index.html, assets/). */
  dir: string;
  /** False when the cached build was still current. */
  built: boolean;
  ms: number;
}

/** Builds the page unless web/dist is current (or `force`). */
export async function ensureWebBuild(options: { force?: boolean; log?: (line: string) => void } = {}): Promise<WebBuild> {
  const t0 = performance.now();
  if (!canBuild()) {
    // An installed package: serve the page `npm pack` built into it.
    if (options.force) {
      throw new ConvlabError(
        'WEB_BUILD',
        'cannot rebuild the page here: --rebuild needs the page sources and Vite (a clone of convlab after npm install); drop --rebuild to serve the built page',
        { exitCode: 2 },
      );
    }
    if (!existsSync(join(WEB_DIST, 'index.html'))) {
      throw new ConvlabError(
        'WEB_BUILD',
        `the page is not built (no ${join('web', 'dist', 'index.html')}) and cannot be built here (no Vite or no page sources): reinstall convlab, or pass --no-page to serve the API only`,
        { exitCode: 1 },
      );
    }
    return { dir: WEB_DIST, built: false, ms: performance.now() - t0 };
  }
  const key = buildKey();
  const keyFile = join(WEB_DIST, KEY_FILE);
  if (!options.force && existsSync(keyFile) && readFileSync(keyFile, 'utf8') === key) {
    return { dir: WEB_DIST, built: false, ms: performance.now() - t0 };
  }
  options.log?.('building the page with Vite (web/ → web/dist)…');
  const tmp = join(WEB_ROOT, `.dist-${process.pid}-${Date.now()}.tmp`);
  try {
    const { build } = await import('vite'); // only when building: the server itself never loads Vite
    await build({ configFile: join(WEB_ROOT, 'vite.config.ts'), root: WEB_ROOT, logLevel: 'warn', build: { outDir: tmp, emptyOutDir: true } });
    await writeFile(join(tmp, KEY_FILE), key);
    await rm(WEB_DIST, { recursive: true, force: true });
    await rename(tmp, WEB_DIST);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new ConvlabError('WEB_BUILD', `building the page failed: ${(err as Error)?.message ?? err}`, { cause: err, exitCode: 1 });
  }
  const ms = performance.now() - t0;
  options.log?.(`page built in ${(ms / 1000).toFixed(1)} s`);
  return { dir: WEB_DIST, built: true, ms };
}

/** True in a clone: the page's sources and Vite are both there. */
function canBuild(): boolean {
  if (!existsSync(join(WEB_ROOT, 'vite.config.ts')) || !existsSync(SRC_ROOT)) return false;
  try {
    import.meta.resolve('vite');
    return true;
  } catch {
    return false;
  }
}

/** A hash of everything the build depends on: web/ sources, src/ sources, and the bundled packages' versions. */
function buildKey(): string {
  const hash = createHash('sha256');
  const require = createRequire(import.meta.url);
  for (const pkg of ['vite', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm']) {
    let version = 'missing';
    try {
      version = (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string }).version;
    } catch {
      // an unresolvable package.json (exports maps) only weakens the key
    }
    hash.update(`${pkg}@${version}\n`);
  }
  for (const root of [WEB_ROOT, SRC_ROOT]) {
    for (const file of sourceFiles(root)) {
      hash.update(`${relative(root, file)}\n`);
      hash.update(readFileSync(file));
    }
  }
  return hash.digest('hex');
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'dist' || name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|html|css|json)$/.test(name)) out.push(path);
  }
  return out;
}
