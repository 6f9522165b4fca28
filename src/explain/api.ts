/** The explain routes' answers (src/serve/explain-routes.ts), as the page reads them. Types only. */
import type { EmbeddingFile } from './embedding.ts';

/** GET /api/explain/test-run: the served model on its test set. */
export interface TestRun {
  dataset: string;
  classes: number;
  classNames?: string[];
  total: number;
  correct: number;
  /** confusion[true][predicted], computed by the server from the test set now. */
  confusion: number[][];
  /** The same from metrics.json (the training run's own test), or null when the model has none. */
  metricsConfusion: number[][] | null;
  image: { height: number; width: number; channels: number };
}

/** One test image. */
export interface TestImage {
  /** Index in the test set. */
  index: number;
  label: number;
  predicted: number;
  probabilities: number[];
  /** height*width*channels bytes (pixel*255, NHWC), base64. */
  pixels: string;
}

/** GET /api/explain/errors?true=T&predicted=P: test images of class T the model took for P. */
export interface ErrorCell {
  true: number;
  predicted: number;
  /** How many there are in the test set (the confusion cell). */
  count: number;
  /** The first `limit` of them, in test-set order. */
  images: TestImage[];
}

/** GET /api/explain/embedding. */
export type Embedding = EmbeddingFile;
