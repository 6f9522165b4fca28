/**
 * The one atomic writer, with write failures injected (a full disk, a read-only folder): the error is one
 * line naming the file, the old file is intact, no temporary file is left, and a training run that fails
 * to save at the end says which checkpoint is kept and how to resume, and resuming from it gives the
 * weights of a run that never failed.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '../../src/backend.ts';
import { loadMnist, subset } from '../../src/data/mnist.ts';
import { presets, type RunConfig } from '../../src/model/config.ts';
import { disposeParams } from '../../src/model/cnn.ts';
import { WriteError, writeFileAtomic } from '../../src/atomic-write.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { trainRun } from '../../src/train/run.ts';

const errnoError = (code: string, message: string) => Object.assign(new Error(`${code}: ${message}`), { code, syscall: 'write' });

/** Until the returned function is called, writing any file whose temporary name contains `name` fails with `code`. */
function failWrites(name: string, code = 'ENOSPC', message = 'no space left on device, write'): () => void {
  const realOpen = fsp.open;
  const m = mock.method(fsp, 'open', async (...args: Parameters<typeof fsp.open>) => {
    const handle = await realOpen(...args);
    if (!String(args[0]).includes(name)) return handle;
    return new Proxy(handle, {
      get(target, key) {
        if (key === 'writeFile' || key === 'write') return async () => Promise.reject(errnoError(code, message));
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  });
  syncBuiltinESMExports();
  return () => {
    m.mock.restore();
    syncBuiltinESMExports();
  };
}

test('a failed write leaves the old file, no temporary file, and one line naming the file and the cause', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'convlab-atomic-'));
  try {
    const file = join(dir, 'metrics.json');
    await writeFile(file, 'old\n');
    for (const [code, cause] of [
      ['ENOSPC', 'the disk is full'],
      ['EROFS', 'the file system is read-only'],
      ['EACCES', 'permission denied'],
    ]) {
      const restore = failWrites('metrics.json', code);
      try {
        await assert.rejects(writeFileAtomic(file, 'new\n'), (err: unknown) => {
          assert.ok(err instanceof WriteError, `${code}: ${String(err)}`);
          assert.equal(err.message, `cannot write ${file}: ${cause} (${code})`);
          assert.equal(err.code, code === 'ENOSPC' ? 'DISK_FULL' : 'WRITE_FAILED');
          return true;
        });
      } finally {
        restore();
      }
      assert.equal(await readFile(file, 'utf8'), 'old\n', `${code}: the old file is intact`);
      assert.deepEqual(await readdir(dir), ['metrics.json'], `${code}: no temporary file is left`);
    }
    // Without the injected failure the same call replaces the file, and other errors pass through unchanged.
    await writeFileAtomic(file, [new TextEncoder().encode('new'), new TextEncoder().encode('\n')]);
    assert.equal(await readFile(file, 'utf8'), 'new\n');
    const restore = failWrites('metrics.json', 'EIO', 'i/o error, write');
    try {
      await assert.rejects(writeFileAtomic(file, 'x'), (err: unknown) => !(err instanceof WriteError) && (err as { code?: string }).code === 'EIO');
    } finally {
      restore();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a full disk when saving the model: the message names the file, the intact checkpoint and --resume; resuming gives the same weights', async () => {
  await useBackend('wasm');
  const mnist = await loadMnist();
  const data = {
    train: subset(mnist.train, 0, 512),
    validation: subset(mnist.validation, 0, 100),
    test: subset(mnist.test, 0, 100),
    classes: 10,
    name: 'mnist',
  };
  const run: RunConfig = { network: presets.seed.network, train: { ...presets.seed.train, iterations: 6, logEvery: 3, validateEvery: 0 } };
  const root = await mkdtemp(join(tmpdir(), 'convlab-full-'));
  const options = (outDir: string) => ({ run, preset: 'seed', backend: 'wasm' as const, outDir, workers: 0, checkpointEvery: 4, data });
  try {
    const straight = await trainRun(options(join(root, 'straight')));
    disposeParams(straight.params);
    const want = await readFile(join(root, 'straight', 'weights.bin'));

    const outDir = join(root, 'full');
    const restore = failWrites('weights.bin');
    try {
      await assert.rejects(trainRun(options(outDir)), (err: unknown) => {
        assert.ok(err instanceof WriteError, String(err));
        assert.ok(!err.message.includes('\n'), 'one line');
        assert.match(
          err.message,
          new RegExp(`^cannot write ${join(outDir, 'weights.bin').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the disk is full \\(ENOSPC\\)`),
        );
        assert.match(err.message, /the last checkpoint \(iteration 4, .*checkpoint\.bin\) is intact/);
        assert.match(err.message, new RegExp(`free some space, then continue with: convlab train --resume ${outDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
        return true;
      });
    } finally {
      restore();
    }
    assert.deepEqual((await readdir(outDir)).sort(), ['checkpoint.bin'], 'only the checkpoint: no model.json, no temporary files, no lock');

    const checkpoint = await readCheckpoint(outDir);
    assert.equal(checkpoint.header.iteration, 4);
    const resumed = await trainRun({ ...options(outDir), resume: checkpoint });
    disposeParams(resumed.params);
    assert.ok((await readFile(join(outDir, 'weights.bin'))).equals(want), 'the resumed run ends with the weights of the run that never failed');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
