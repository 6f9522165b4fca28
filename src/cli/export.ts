import { exportOnnxFile } from '../export/file.ts';
import { BATCH_DIM, INPUT_NAME, LOGITS_NAME, ONNX_OPSET, PROBABILITIES_NAME, type OnnxLayout } from '../export/onnx.ts';
import { formatCount } from '../errors.ts';
import { useBackend } from '../backend.ts';

export async function exportCommand(flags: { model: string; format: 'onnx'; out?: string; layout: OnnxLayout; force?: boolean }): Promise<void> {
  await useBackend('cpu'); // the loader makes tensors; no arithmetic is done on them
  const result = await exportOnnxFile({ modelDir: flags.model, out: flags.out, layout: flags.layout, force: flags.force });
  const { height, width, channels } = result.net.input;
  const dims = result.layout === 'nhwc' ? [height, width, channels] : [channels, height, width];
  const classes = result.net.dense[result.net.dense.length - 1].units;
  console.log(
    `wrote ${result.file} (${formatCount(result.bytes)} bytes, ONNX opset ${ONNX_OPSET}): input ${INPUT_NAME} [${[BATCH_DIM, ...dims].join(',')}] ` +
      `${result.layout.toUpperCase()} float32 in [0,1] → ${PROBABILITIES_NAME}, ${LOGITS_NAME} [${BATCH_DIM},${classes}]`,
  );
}
