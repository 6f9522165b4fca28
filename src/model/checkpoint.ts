/**
 * The saved-model format's public entry points, for older import sites: the writer is layers-model.ts,
 * the reader load.ts.
 */
export { layersTopology, saveModel, type KerasLayerJson, type LayersTopology } from './layers-model.ts';
export { layersModelIOHandler, loadModel } from './load.ts';
