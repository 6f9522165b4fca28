/**
 * The `convlab` command line: parse flags, call the library, print. One thin file per command.
 * Every failure becomes one line on stderr and a non-zero exit code, never a stack trace
 * (set CONVLAB_DEBUG=1 to see the stack).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConvlabError } from '../errors.ts';
import { backendNames } from '../backend.ts';
import { trainCommand } from './train.ts';
import { evaluateCommand } from './evaluate.ts';
import { predictCommand } from './predict.ts';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function program(): Command {
  const cli = new Command('convlab')
    .description('A convolutional network for MNIST built from TensorFlow.js core ops: train, evaluate, predict.')
    .version('0.1.0')
    .showSuggestionAfterError()
    .exitOverride();

  cli
    .command('train')
    .description('train the network on MNIST, test it, and save it with its metrics')
    .addOption(new Option('--preset <name>', 'seed (the lesson, exactly) or default (fast recipe, ≥ 99%)').choices(['seed', 'default']).default('default'))
    .addOption(new Option('--iterations <n>', 'optimisation steps (0 = evaluate the untrained network)').argParser(nonNegativeInt).conflicts('epochs'))
    .addOption(new Option('--epochs <n>', 'passes over the 55,000 training images (alternative to --iterations)').argParser(positiveNumber))
    .option('--batch-size <n>', 'images per step', positiveInt)
    .option('--learning-rate <x>', "Adam's step size (for a cosine schedule, the starting value)", positiveNumber)
    .option('--seed <n>', 'seed for initial weights and batch order', nonNegativeInt)
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(backendNames).default('wasm'))
    .option('--workers <n>', 'worker threads computing gradients in parallel (default: one per core; 0 = none)', nonNegativeInt)
    .option('--out <dir>', 'where to write the model and metrics (default: runs/<timestamp>)')
    .option('--log-every <n>', 'iterations between log lines (default: 100, fewer for short runs)', positiveInt)
    .option('--validate-every <n>', 'iterations between validation passes (0 = only at the end; default 1000)', nonNegativeInt)
    .action(trainCommand);

  cli
    .command('evaluate')
    .description('print the accuracy and confusion matrix of a saved model')
    .requiredOption('--model <dir>', 'folder written by convlab train')
    .addOption(new Option('--split <name>', 'which MNIST split').choices(['test', 'validation']).default('test'))
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(backendNames).default('wasm'))
    .action(evaluateCommand);

  cli
    .command('predict')
    .description('classify pictures of digits (PNG or JPEG, any size, dark on light or light on dark)')
    .requiredOption('--model <dir>', 'folder written by convlab train')
    .argument('<files...>', 'image files')
    .option('--json', 'one JSON object per file: {"file", "class", "probabilities"}')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(backendNames).default('wasm'))
    .action(predictCommand);

  return cli;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its one-line message (or the help text).
      return err.exitCode === 0 ? 0 : 2;
    }
    if (process.env.CONVLAB_DEBUG) console.error(err);
    if (err instanceof ConvlabError) {
      console.error(`convlab: ${err.message}`);
      return err.exitCode;
    }
    console.error(`convlab: unexpected error: ${(err as Error)?.message ?? String(err)} (set CONVLAB_DEBUG=1 for details)`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
