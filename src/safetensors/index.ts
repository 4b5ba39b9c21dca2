/** Safetensors checkpoints: lazy reader (headers, on-demand tensor reads), writer, dtype helpers. */
export * from './dtype.js';
export * from './reader.js';
export * from './writer.js';
