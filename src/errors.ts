/**
 * Typed errors at the boundary. Each carries a stable `code` and a message that says what is wrong and
 * how to fix it. The CLI prints `message` on one line and exits non-zero; the server maps `code` to 4xx.
 */
export class ConvlabError extends Error {
  /** Stable machine-readable code, e.g. `IDX_TRUNCATED`. */
  readonly code: string;
  /** Process exit code the CLI uses for this error (2 = bad input, 1 = runtime failure). */
  readonly exitCode: number;

  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options.exitCode ?? 2;
  }
}

/** A data file that is not what it claims to be (IDX, CIFAR, ...). */
export class DataFormatError extends ConvlabError {}

/** A saved model that cannot be read back (missing files, wrong shapes, wrong byte count). */
export class ModelFormatError extends ConvlabError {}

/** A user's image that cannot be decoded or used. */
export class ImageError extends ConvlabError {}

/** A bad flag, config value or argument. */
export class UsageError extends ConvlabError {}

/** Training that cannot continue (NaN loss, ...). */
export class TrainingError extends ConvlabError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, exitCode: 1 });
  }
}

/** `1234567` → `1,234,567`: byte and sample counts in messages are read by people. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
