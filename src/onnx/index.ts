/** ONNX graph building: protobuf model writer, graph builder, weight sources, saving, shared layers. */
export * from './model.js';
export * from './graph.js';
export * from './weights.js';
export * from './save.js';
export * from './layers/index.js';
export * from './randomWeights.js';
export * from './build.js';
