import { InvalidArgumentError } from 'commander';
import { useBackend, type BackendName } from '../backend.ts';
import type { ImageChoice, VisualizeResult } from '../viz/run.ts';
import type { LabeledImages } from '../data/idx.ts';

export interface VisualizeFlags {
  model: string;
  out?: string;
  image?: ImageChoice[];
  channels?: number[];
  /** Default: the data set the model was trained on (recorded in model.json). */
  dataset?: string;
  backend: BackendName;
}

/** `--image 13` is a test-set index, anything else a picture file; the flag repeats. */
export function collectImages(value: string, previous: ImageChoice[] = []): ImageChoice[] {
  return [...previous, /^\d+$/.test(value) ? Number(value) : value];
}

/** `--channels 0,1,5` → [0, 1, 5]. */
export function channelList(value: string): number[] {
  const channels = value.split(',').map((s) => Number(s.trim()));
  if (channels.length === 0 || channels.some((c) => !Number.isInteger(c) || c < 0)) {
    throw new InvalidArgumentError('expected whole numbers ≥ 0 separated by commas, e.g. 0,1');
  }
  return channels;
}

/** Draws the figures and report.html of a model folder (Skia and the figure code load only when called). */
async function draw(modelDir: string, flags: Partial<VisualizeFlags> = {}, data?: { test: LabeledImages }): Promise<VisualizeResult> {
  const { visualize } = await import('../viz/run.ts');
  return visualize({ modelDir, outDir: flags.out, images: flags.image, channels: flags.channels, dataset: flags.dataset, data });
}

export async function visualizeCommand(flags: VisualizeFlags): Promise<void> {
  await useBackend(flags.backend);
  const result = await draw(flags.model, flags);
  for (const f of result.figures) console.log(`wrote ${f.file.padEnd(24)} ${f.width}x${f.height}`);
  for (const s of result.skipped) console.log(`skipped ${s.file}: ${s.reason}`);
  console.log(`wrote ${result.report} (${result.figures.length} figures in ${result.outDir})`);
}

/** After `convlab train`: figures and report.html next to the model; returns the line to print. */
export async function writeReport(outDir: string, data?: { test: LabeledImages }): Promise<string> {
  const result = await draw(outDir, {}, data);
  const skipped = result.skipped.map((s) => `; skipped ${s.file}: ${s.reason}`).join('');
  return `report: ${result.report} (${result.figures.length} figures${skipped})`;
}
