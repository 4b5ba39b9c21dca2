/**
 * Plain tensors passed between the pipeline and onnxruntime (possibly across a worker boundary).
 * Layout is always row-major; names of variables carry the layout, e.g. `latents /* [B,F,4,h,w] *\/`.
 */
export type TensorType = 'float32' | 'float16' | 'int64';

export interface TensorData {
  type: TensorType;
  /** float32 → Float32Array; float16 → Uint16Array (raw halves: Node 20 has no Float16Array); int64 → BigInt64Array. */
  data: Float32Array | Uint16Array | BigInt64Array;
  dims: number[];
}
