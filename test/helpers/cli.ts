/** Running `convlab` as a user does: a real child process of bin/convlab.js. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const bin = fileURLToPath(new URL('../../bin/convlab.js', import.meta.url));

/** Runs `convlab ARGS...` to completion (CONVLAB_DEBUG off, so errors are the user's one line). */
export function convlab(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, CONVLAB_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `convlab ARGS...` in the background; `output()` is everything it printed so far. */
export function start(...args: string[]): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { output: () => out });
}

export const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

/** Resolves once `path` exists. */
export async function waitFor(path: string, timeoutMs = 90_000) {
  const t0 = Date.now();
  while (!existsSync(path)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${path}`);
    await sleep(20);
  }
}
