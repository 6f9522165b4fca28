#!/usr/bin/env node
// The `convlab` command: runs the compiled CLI in dist/ (built by `npm run build`, which `npm install`
// runs in a clone through `prepare`, and which the published package ships).
import { existsSync } from 'node:fs';

// Supported: the Node LTS lines convlab is tested on. Older ones get one line, then we carry on if we can.
const SUPPORTED_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (major < SUPPORTED_MAJOR) {
  console.error(
    `convlab: Node ${process.versions.node} is not supported; install Node ${SUPPORTED_MAJOR} or newer (an LTS release: 24 or 26) from https://nodejs.org — trying anyway`,
  );
}

const built = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else if (existsSync(new URL('../src/cli/main.ts', import.meta.url))) {
  // A clone installed without its scripts (npm install --ignore-scripts): run the sources through tsx.
  try {
    const { register } = await import('tsx/esm/api');
    register();
  } catch {
    console.error('convlab: dist/ is missing and tsx is not installed: run `npm install` (or `npm run build`) in the convlab folder');
    process.exit(1);
  }
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
} else {
  console.error('convlab: dist/ is missing from this installation: reinstall convlab');
  process.exit(1);
}
