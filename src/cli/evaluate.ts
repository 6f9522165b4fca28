import { useBackend, type BackendName } from '../backend.ts';
import { loadDataset, parseDatasetSpec } from '../data/datasets.ts';
import { loadParams } from '../model/load.ts';
import { disposeParams } from '../model/cnn.ts';
import { evaluate } from '../eval/classify.ts';
import { accuracyLine, confusionTable } from '../eval/metrics.ts';
import { UsageError } from '../errors.ts';
import { classCount } from '../model/config.ts';

export async function evaluateCommand(flags: { model: string; split: 'test' | 'validation'; dataset?: string; backend: BackendName }): Promise<void> {
  await useBackend(flags.backend);
  const model = await loadParams(flags.model);
  try {
    // The data set the model was trained on (model.json records it), unless --dataset names another.
    const recorded = typeof model.metadata.dataset === 'string' ? model.metadata.dataset : 'mnist';
    const data = await loadDataset(parseDatasetSpec(flags.dataset ?? recorded));
    const { height, width, channels } = model.net.input;
    const d = data[flags.split];
    if (d.height !== height || d.width !== width || d.channels !== channels) {
      throw new UsageError(
        'MODEL_INPUT_SHAPE',
        `${flags.model} takes ${height}x${width}x${channels} images but ${data.name} has ${d.height}x${d.width}x${d.channels}; pass --dataset with the data set the model was trained on`,
      );
    }
    if (classCount(model.net) < data.classes) {
      throw new UsageError(
        'MODEL_CLASSES',
        `${flags.model} tells ${classCount(model.net)} classes apart but ${data.name} has ${data.classes}; pass --dataset with the data set the model was trained on`,
      );
    }
    const result = evaluate(model.net, model.params, data[flags.split]);
    console.log(accuracyLine(flags.split, result));
    console.log('\nConfusion matrix (rows: true class, columns: predicted class)');
    console.log(confusionTable(result.confusion));
  } finally {
    disposeParams(model.params);
  }
}
