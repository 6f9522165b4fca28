// Entry point of a training worker thread (see parallel.ts). A plain-JS file so that it starts the same
// way however the parent was started:
// - in the built package (dist/train/) the compiled worker.js sits next to this file: run it directly;
// - in a clone running the TypeScript sources (tests, `tsx`), there is only worker.ts: register tsx's
//   loader in this thread first (workers do not inherit the parent's loaders), then load it.
import { existsSync } from 'node:fs';

const compiled = new URL('./worker.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('./worker.ts', import.meta.url).href);
}
