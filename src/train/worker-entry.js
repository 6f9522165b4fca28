// Entry point of a training worker thread: load TypeScript support, then the worker itself.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
