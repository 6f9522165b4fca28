/**
 * Runs one suite of test/suites.ts with Node's test runner, one file at a time (the machine's cores go to
 * each file's own workers), the spec reporter, and each file's time at the end.
 *
 *   tsx test/run.ts fast|slow|all [node --test options, e.g. --test-name-pattern REGEX]
 *
 * `npm test`, `npm run test:slow` and `npm run test:all` call it. Exits with the test runner's code.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SUITES, type Suite, suiteFiles } from './suites.ts';

const [suite, ...options] = process.argv.slice(2);
if (!SUITES.includes(suite as Suite)) {
  console.error(`test/run.ts: the first argument must be one of ${SUITES.join(', ')}, got ${suite ?? 'nothing'}`);
  process.exit(2);
}
const files = suiteFiles(suite as Suite);
if (files.length === 0) {
  console.error(`test/run.ts: the ${suite} suite has no files`);
  process.exit(2);
}
console.log(`${suite} suite: ${files.length} test files`);

const tsx = fileURLToPath(import.meta.resolve('tsx/cli'));
const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout'];
const fileTimes = fileURLToPath(new URL('./helpers/file-times.ts', import.meta.url));
reporters.push(`--test-reporter=${fileTimes}`, '--test-reporter-destination=stdout');
const child = spawn(process.execPath, [tsx, '--test', '--test-concurrency=1', ...reporters, ...options, ...files], { stdio: 'inherit' });
// Ctrl-C reaches the runner and its files through the terminal; wait for them to finish and report.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
