/**
 * Weight sources for the graph builder. A graph asks for each weight by its diffusers name and the shape
 * the config implies; the source says where the bytes are (a checkpoint) or just records the request
 * (a dry run, used to list what a config needs and to generate random test checkpoints).
 */
import { resolve } from 'node:path';
import { openCheckpoint, type SafetensorsCheckpoint, type TensorInfo } from '../safetensors/reader.js';

/** One weight a graph needs: its diffusers name and expected shape. */
export interface WeightRequest {
  name: string;
  shape: number[];
}

export type WeightLookup =
  | { kind: 'found'; info: TensorInfo }
  | { kind: 'missing' }
  /** Dry run: nothing to point at; the graph gets a placeholder. */
  | { kind: 'placeholder' };

export interface WeightSource {
  /** Where the weights come from, for error messages (a file or directory path). */
  readonly description: string;
  /** True for sources that only record requests; graphs built from them cannot be saved. */
  readonly dry: boolean;
  lookup(name: string): WeightLookup;
  /** Every tensor name the source holds (empty for dry sources). */
  names(): string[];
}

/** Weights read from a safetensors checkpoint (single file, sharded index, or component directory). */
export function checkpointWeights(
  pathOrCheckpoint: string | SafetensorsCheckpoint,
  options: { variant?: string } = {},
): WeightSource {
  const ckpt = typeof pathOrCheckpoint === 'string' ? openCheckpoint(pathOrCheckpoint, options) : pathOrCheckpoint;
  const description = typeof pathOrCheckpoint === 'string' ? resolve(pathOrCheckpoint) : ckpt.files.join(', ');
  return {
    description,
    dry: false,
    lookup(name) {
      const info = ckpt.tensors.get(name);
      return info ? { kind: 'found', info } : { kind: 'missing' };
    },
    names: () => [...ckpt.tensors.keys()],
  };
}

/** A source that holds nothing and only lets the builder record what it asks for. */
export function dryWeights(): WeightSource {
  return { description: '(dry run)', dry: true, lookup: () => ({ kind: 'placeholder' }), names: () => [] };
}
