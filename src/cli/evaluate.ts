import { useBackend, type BackendName } from '../backend.ts';
import { loadMnist } from '../data/mnist.ts';
import { loadParams } from '../model/load.ts';
import { disposeParams } from '../model/cnn.ts';
import { evaluate } from '../train/loop.ts';
import { accuracyLine, confusionTable } from '../eval/metrics.ts';

export async function evaluateCommand(flags: { model: string; split: 'test' | 'validation'; backend: BackendName }): Promise<void> {
  await useBackend(flags.backend);
  const model = await loadParams(flags.model);
  try {
    const data = await loadMnist();
    const result = evaluate(model.net, model.params, data[flags.split]);
    console.log(accuracyLine(flags.split, result));
    console.log('\nConfusion matrix (rows: true class, columns: predicted class)');
    console.log(confusionTable(result.confusion));
  } finally {
    disposeParams(model.params);
  }
}
