import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBackend, type BackendName } from '../backend.ts';
import { loadDataset, parseDatasetSpec } from '../data/datasets.ts';
import { UsageError } from '../errors.ts';
import { defaultWorkerCount } from '../train/parallel.ts';
import {
  BEST_DIR,
  SEARCH_FILE,
  defaultSpace,
  parseSpace,
  runSearch,
  type Distribution,
  type ParamValue,
  type SearchSettings,
  type SearchSpace,
  type TrialRecord,
} from '../train/search.ts';
import type { PresetName } from '../model/config.ts';
import { runDraft } from './train.ts';

export interface SearchFlags {
  trials: number;
  iterations: number;
  space?: string;
  preset: PresetName;
  config?: string;
  dataset?: string;
  seed: number;
  out?: string;
  backend: BackendName;
  workers?: number;
}

/** `network.conv[0].filters` → `conv1.filters`, `train.optimizer.learningRate` → `lr`. */
export function shortName(path: string): string {
  if (path === 'train.optimizer.learningRate') return 'lr';
  return path
    .replace(/^train\.optimizer\./, '')
    .replace(/^(network|train)\./, '')
    .replace(/conv\[(\d+)\]/g, (_, i) => `conv${Number(i) + 1}`)
    .replace(/dense\[(\d+)\]/g, (_, i) => `fc${Number(i) + 1}`);
}

function formatValue(v: ParamValue): string {
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) < 1e-2 ? v.toExponential(2) : String(v);
}

function describeDistribution(d: Distribution): string {
  if ('choice' in d) return `{${d.choice.join(', ')}}`;
  if ('uniform' in d) return `uniform ${d.uniform[0]}..${d.uniform[1]}`;
  if ('logUniform' in d) return `log-uniform ${d.logUniform[0]}..${d.logUniform[1]}`;
  if ('int' in d) return `integers ${d.int[0]}..${d.int[1]}`;
  return `log-integers ${d.logInt[0]}..${d.logInt[1]}`;
}

/** The ranked table: `rank | trial | val acc | seconds | lr | conv1.filters | ...`, at most `limit` rows. */
export function rankingTable(ranking: TrialRecord[], space: SearchSpace, limit = 10): string {
  const paths = Object.keys(space);
  const header = ['rank', 'trial', 'val acc', 'seconds', ...paths.map(shortName)];
  const rows = ranking
    .slice(0, limit)
    .map((t, i) => [
      String(i + 1),
      String(t.trial),
      t.validationAccuracy === null ? t.status : `${(100 * t.validationAccuracy).toFixed(2)}%`,
      t.trainSeconds.toFixed(1),
      ...paths.map((p) => formatValue(t.params[p])),
    ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c < 4 ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join(' | ')
      .trimEnd();
  const more = ranking.length > limit ? [`… ${ranking.length - limit} more in ${SEARCH_FILE}`] : [];
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line), ...more].join('\n');
}

function timestamp(date = new Date()): string {
  return date.toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
}

export async function searchCommand(flags: SearchFlags): Promise<void> {
  const { draft, source } = await runDraft(flags);
  let space: SearchSpace;
  if (flags.space !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(flags.space, 'utf8'));
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${(err as Error).message})`;
      throw new UsageError('SPACE_INVALID', `${flags.space}: ${why}`, { cause: err });
    }
    space = parseSpace(json, flags.space, draft);
  } else {
    space = defaultSpace(draft);
  }
  const spec = parseDatasetSpec(flags.dataset ?? 'mnist');
  const outDir = flags.out ?? join('searches', timestamp());
  await useBackend(flags.backend);
  const data = await loadDataset(spec);
  const settings: SearchSettings = { seed: flags.seed, iterations: flags.iterations, dataset: data.name, baseSource: source, base: draft, space };
  const workers = flags.workers ?? (flags.backend === 'tensorflow' ? 0 : defaultWorkerCount());

  console.log(
    `convlab search: ${flags.trials} trials of ${flags.iterations} iterations of ${source} on ${data.name}, seed ${flags.seed}, ` +
      `${workers === 0 ? 'no worker threads' : `${workers} worker thread${workers > 1 ? 's' : ''}`}; writing ${join(outDir, SEARCH_FILE)}`,
  );
  for (const [path, d] of Object.entries(space)) console.log(`  ${shortName(path).padEnd(16)} ${describeDistribution(d)}   (${path})`);

  // Ctrl-C: abandon the current trial (it is repeated on resume), keep the finished ones, exit 130.
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write('\nstopping (Ctrl-C again to quit at once)...\n');
  };
  process.on('SIGINT', onSigint);
  let result: Awaited<ReturnType<typeof runSearch>>;
  try {
    result = await runSearch(
      { outDir, trials: flags.trials, settings, data, backend: flags.backend, workers, shouldStop: () => interrupted },
      {
        onStart: (done, total) => {
          if (done > 0) console.log(`continuing ${join(outDir, SEARCH_FILE)}: ${done} of ${total} trials already done`);
        },
        onTrial: (record, ranking, total) => {
          const score = record.validationAccuracy === null ? (record.error ?? record.status) : `validation ${(100 * record.validationAccuracy).toFixed(2)}%`;
          console.log(`\ntrial ${record.trial}/${total}: ${score} in ${record.trainSeconds.toFixed(1)} s`);
          console.log(rankingTable(ranking, space));
        },
      },
    );
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (result.stopped) {
    console.log(`interrupted; ${result.file.trials.length} finished trials are in ${join(outDir, SEARCH_FILE)}`);
    console.log(`continue with the same command and --out ${outDir}`);
    process.exitCode = 130;
    return;
  }
  const best = result.best;
  if (best === undefined) {
    console.log('no trial trained without diverging; try a lower learning-rate range');
    process.exitCode = 1;
    return;
  }
  console.log(`\nbest: trial ${best.trial}, validation ${(100 * best.validationAccuracy).toFixed(2)}%`);
  console.log(`Accuracy on test set: ${(100 * best.testAccuracy!).toFixed(2)}% (${best.testCorrect} / ${best.testTotal})`);
  console.log(`wrote ${join(outDir, SEARCH_FILE)} and the best model in ${join(outDir, BEST_DIR)}/`);
}
