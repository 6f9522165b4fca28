/**
 * A test reporter that prints, after the run, how long each test file took (its child process, from start
 * to exit, hooks included), slowest first, and the total. test/run.ts adds it beside the spec reporter, so
 * every `npm test` shows which files to move into (or out of) the slow suite, test/suites.ts.
 */
import { relative, resolve } from 'node:path';
import type { TestEvent } from 'node:test/reporters';

export default async function* fileTimes(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const times = new Map<string, number>();
  for await (const event of source) {
    // Each file runs as one top-level test named after the file as it was given (often a relative path);
    // `file` is its absolute path. The file's own top-level tests carry the same `file` and other names.
    if (event.type !== 'test:complete' || event.data.nesting !== 0 || event.data.file === undefined) continue;
    if (resolve(event.data.name) !== event.data.file) continue;
    const file = relative(process.cwd(), event.data.name);
    times.set(file, (times.get(file) ?? 0) + event.data.details.duration_ms / 1000);
  }
  if (times.size === 0) return;
  const rows = [...times].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, t]) => s + t, 0);
  yield `\nfile times, slowest first (${rows.length} files, ${total.toFixed(0)} s in all):\n`;
  for (const [file, t] of rows) yield `${t.toFixed(1).padStart(8)} s  ${file}\n`;
}
