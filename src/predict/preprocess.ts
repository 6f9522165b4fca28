/**
 * The preprocessing of pictures, in one import: the pure pixel steps (image.ts, paper.ts, components.ts, pipeline.ts: no
 * Node, no DOM, the web page imports them) and the decoder (decode.ts: Node, Skia loaded lazily).
 *
 *   bytes ─decodeImage→ GrayImage ─toMnist→ 784 floats in [0,1] + diagnostics
 *   bytes ─decodeRgba→ RgbaImage ─colourInput→ height×width×3 floats in [0,1] (colour models)
 */
export * from './image.ts';
export * from './paper.ts';
export * from './components.ts';
export * from './pipeline.ts';
export * from './colour.ts';
export * from './decode.ts';
