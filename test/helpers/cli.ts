/** Running `convlab` as a user does: a real child process of bin/convlab.js. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
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

/**
 * Starts `convlab serve ARGS...` (with `--port 0` it picks a free port) and resolves with the process and
 * the URL it printed once it listens; rejects with its output if it exits first, or kills it and rejects
 * if it takes over `timeoutMs`.
 */
export function serve(args: string[], timeoutMs = 60_000): Promise<{ child: ReturnType<typeof start>; url: string }> {
  const child = start('serve', ...args);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      child.kill('SIGKILL');
      reject(new Error(`convlab serve did not start in ${timeoutMs / 1000} s:\n${child.output()}`));
    }, timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`convlab serve exited with ${code} before it listened:\n${child.output()}`));
    };
    const onData = () => {
      const m = /^convlab serving .* at (http:\/\/[^/\s]+\/)/m.exec(child.output());
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout!.off('data', onData);
      resolve({ child, url: m[1] });
    };
    child.stdout!.on('data', onData); // after start()'s own listener, so output() holds this chunk
    child.once('exit', onExit);
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for programs that cannot be given port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
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
