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
import { channelList, collectImages, visualizeCommand } from './visualize.ts';
import { DEFAULT_BATCH_WINDOW_MS, DEFAULT_MAX_BATCH, serveCommand } from './serve.ts';
import { searchCommand } from './search.ts';
import { exportCommand } from './export.ts';
import { parseAugmentFlag } from '../model/validate.ts';

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

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
}

function maxBatch(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('expected a whole number in 1..64');
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function program(): Command {
  const cli = new Command('convlab')
    .description('A convolutional network for MNIST built from TensorFlow.js core ops: train, evaluate, predict, visualize.')
    .version('0.1.0')
    .showSuggestionAfterError()
    .exitOverride();

  cli
    .command('train')
    .description('train the network on MNIST (or another data set), test it, and save it with its metrics')
    .addOption(new Option('--preset <name>', 'seed (the lesson, exactly) or default (fast recipe, ≥ 99%)').choices(['seed', 'default']).default('default'))
    .addOption(new Option('--config <file>', 'the network and training recipe from a JSON file (see examples/)').conflicts('preset'))
    .option('--dataset <name>', 'mnist (default), idx:DIR (IDX images + labels) or cifar10:DIR (CIFAR-10 binary version)')
    .option('--augment <list>', 'shift=N (random shifts up to N pixels), flip (random left-right mirror), or none; e.g. shift=4,flip', parseAugmentFlag)
    .addOption(new Option('--iterations <n>', 'optimisation steps (0 = evaluate the untrained network)').argParser(nonNegativeInt).conflicts('epochs'))
    .addOption(new Option('--epochs <n>', 'passes over the training images (alternative to --iterations)').argParser(positiveNumber))
    .option('--batch-size <n>', 'images per step', positiveInt)
    .option('--learning-rate <x>', "the optimizer's step size (for a cosine schedule, the starting value)", positiveNumber)
    .option('--seed <n>', 'seed for initial weights, batch order, dropout and augmentation', nonNegativeInt)
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(backendNames).default('wasm'))
    .option('--workers <n>', 'worker threads computing gradients in parallel (default: one per core; 0 = none)', nonNegativeInt)
    .option('--out <dir>', 'where to write the model and metrics (default: runs/<timestamp>)')
    .option('--checkpoint-every <n>', 'write a resumable checkpoint every N iterations (Ctrl-C always writes one)', positiveInt)
    .option('--resume <dir>', 'continue the unfinished run in DIR from its checkpoint')
    .option('--log-every <n>', 'iterations between log lines (default: 100, fewer for short runs)', positiveInt)
    .option('--validate-every <n>', 'iterations between validation passes (0 = only at the end; default 1000)', nonNegativeInt)
    .option('--no-report', 'skip the figures and report.html drawn after training')
    .action(trainCommand);

  cli
    .command('evaluate')
    .description('print the accuracy and confusion matrix of a saved model')
    .requiredOption('--model <dir>', 'folder written by convlab train')
    .addOption(new Option('--split <name>', 'which split of the data set').choices(['test', 'validation']).default('test'))
    .option('--dataset <name>', 'mnist, idx:DIR or cifar10:DIR (default: the data set the model was trained on)')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(backendNames).default('wasm'))
    .action(evaluateCommand);

  cli
    .command('predict')
    .description('classify pictures of digits (PNG, JPEG, WebP, GIF, AVIF or BMP, any size: photos, scans, drawings)')
    .requiredOption('--model <dir>', 'folder written by convlab train')
    .argument('<files...>', 'image files')
    .option('--json', 'one JSON object per file: {"file", "class", "probabilities", "warnings"}')
    .option('--preprocessed', 'with --json: add "preprocessed", the 784 values the network received')
    .option('--show <dir>', 'write, per picture, a PNG of the original beside the 28x28 the network received')
    .option('--timing', "print where each picture's time went (read, decode, shrink, steps, classify) on stderr")
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(backendNames).default('wasm'))
    .action(predictCommand);

  cli
    .command('visualize')
    .description('draw the figures (filters, feature maps, mistakes, confusion matrix, curves) and report.html of a saved model')
    .requiredOption('--model <dir>', 'folder written by convlab train')
    .option('--out <dir>', 'where to write the figures and report.html (default: the model folder)')
    .option('--image <n|file>', 'test-set index or PNG/JPEG file whose feature maps to draw; repeat for more (default: 0 and 13)', collectImages)
    .option('--channels <list>', 'input channels of conv2 whose filters to draw, one figure each (default: 0,1)', channelList)
    .option('--dataset <name>', 'mnist, idx:DIR or cifar10:DIR (default: the data set the model was trained on)')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(backendNames).default('wasm'))
    .action(visualizeCommand);

  cli
    .command('search')
    .description('random search over hyperparameters: train each trial, rank by validation accuracy, keep and test the best')
    .option('--trials <n>', 'number of trials (more can be added later by running again with a larger N)', positiveInt, 20)
    .option('--iterations <n>', 'training iterations per trial', positiveInt, 500)
    .option('--space <file>', 'the search space as JSON (default: learning rate, filters, dense units, dropout; see README)')
    .addOption(new Option('--preset <name>', 'the base config the space varies').choices(['seed', 'default']).default('default'))
    .addOption(new Option('--config <file>', 'the base config the space varies, from a file').conflicts('preset'))
    .option('--dataset <name>', 'mnist (default), idx:DIR or cifar10:DIR')
    .option('--seed <n>', 'seeds the sampling of trials (each trial also trains with this seed)', nonNegativeInt, 1)
    .option('--out <dir>', 'where to write search.json and best/ (default: searches/<timestamp>)')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(backendNames).default('wasm'))
    .option('--workers <n>', 'worker threads per trial (default: one per core; 0 = none)', nonNegativeInt)
    .action(searchCommand);

  cli
    .command('serve')
    .description('serve the HTTP API and the drawing page (the page is built with Vite on first start)')
    .requiredOption('--model <dir>', 'folder written by convlab train')
    .option('--port <n>', 'TCP port (0 = any free port)', nonNegativeInt, 8080)
    .option('--host <address>', 'address to listen on (0.0.0.0 = every interface)', '127.0.0.1')
    .option('--no-page', 'serve the API only: do not build or serve the page')
    .option('--rebuild', 'rebuild the page even if web/dist is up to date')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend for inference').choices(backendNames).default('wasm'))
    .option(
      '--workers <n>',
      'inference worker threads (default: one per core but one, left to the main thread; at least 1; 0 = the main thread)',
      nonNegativeInt,
    )
    .option('--batch-window <ms>', 'how long a predict request waits for others to share its forward pass', nonNegativeNumber, DEFAULT_BATCH_WINDOW_MS)
    .option('--max-batch <n>', 'images in a forward pass that make it start at once, without waiting for the window (1..64)', maxBatch, DEFAULT_MAX_BATCH)
    .option('--token-file <file>', 'require `Authorization: Bearer TOKEN` with the token in this file (needed off loopback, or --no-auth)')
    .option('--no-auth', 'serve off loopback without a token (a proxy in front authenticates)')
    .option('--cors <origin>', 'allow this origin to call the API from a browser (repeatable; none by default)', (v: string, all: string[] = []) => [...all, v])
    .option('--rate-limit <n/min>', 'most requests per minute per client address (default: no limit)')
    .option('--trust-proxy <proxies>', "read the client's address from X-Forwarded-For sent by these proxies only (addresses or CIDR ranges, comma-separated)")
    .option('--drain-timeout <s>', 'on SIGTERM, seconds to let requests in flight finish', positiveNumber, 10)
    .action(serveCommand);

  cli
    .command('export')
    .description('write a saved model as an ONNX file (opset 13) for ONNX Runtime, TensorRT, onnx2torch, ...')
    .requiredOption('--model <dir>', 'folder written by convlab train')
    .addOption(new Option('--format <name>', 'file format').choices(['onnx']).default('onnx'))
    .option('--out <file>', 'where to write (default: DIR/model.onnx); never replaced unless --force')
    .addOption(new Option('--layout <order>', 'input layout: nchw (ONNX convention) or nhwc (like convlab)').choices(['nchw', 'nhwc']).default('nchw'))
    .option('--force', 'replace --out if it exists')
    .action(exportCommand);

  return cli;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return Number(process.exitCode ?? 0); // a command may have set its own (130 after Ctrl-C)
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
