/**
 * A small ONNX graph-building layer: named values with a dtype (and a shape where the caller knows one),
 * `input`/`output`/`op`, constants, and weights requested by diffusers name from a WeightSource.
 *
 * Weights are never copied by default: each initializer is an external-data reference INTO the
 * checkpoint's own .safetensors file (offset = 8 + header length + begin). See `save.ts` for how the
 * file is made reachable from the model directory (ORT refuses paths outside it).
 */
import { CheckpointError } from '../errors.js';
import { convertTensorStreaming, convertTensorTransposed } from '../safetensors/convert.js';
import { floatToBfloat16, SAFETENSORS_DTYPE_SIZE, type SafetensorsDtype } from '../safetensors/dtype.js';
import { numberToHalfBits, type FloatDtype } from '../tensor/float16.js';
import { readTensorBytes, type TensorInfo } from '../safetensors/reader.js';
import {
  DTYPE_SIZE,
  ONNX_DTYPE,
  OPSET,
  type AttrValue,
  type Dim,
  type DType,
  type NodeDef,
  type TensorDef,
  type ValueInfoDef,
} from './model.js';
import type { WeightRequest, WeightSource } from './weights.js';

/** A value in the graph. `shape` is known for inputs and where a helper sets it; otherwise undefined. */
export interface Value {
  readonly name: string;
  readonly dtype: DType;
  readonly shape?: readonly Dim[];
}

/** Float dtypes a graph can compute in. */
export type { FloatDtype };

/**
 * Execution provider a graph is built for. Layers consult it where ORT's CUDA EP lacks a kernel for the op
 * the CPU graph uses (see `groupNorm` in layers/basic.ts), and where WebGPU needs attention split so that no
 * tensor exceeds its binding limit (unet/build.ts); every other op is the same for all.
 */
export type GraphTarget = 'cpu' | 'cuda' | 'webgpu';

/**
 * Attribute shorthand: integer number → INT, non-integer number → FLOAT, string → STRING,
 * number[] of integers → INTS, otherwise FLOATS. Use `attr.float(1)` / `attr.floats([..])` to force floats.
 */
export type AttrInput = number | string | number[] | AttrValue;

export const attr = {
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  floats: (value: number[]): AttrValue => ({ kind: 'floats', value }),
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  ints: (value: number[]): AttrValue => ({ kind: 'ints', value }),
};

function toAttr(name: string, v: AttrInput): AttrValue {
  if (typeof v === 'number') return Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v };
  if (typeof v === 'string') return { kind: 'string', value: v };
  if (Array.isArray(v)) return v.every(Number.isInteger) ? { kind: 'ints', value: v } : { kind: 'floats', value: v };
  if (v && typeof v === 'object' && 'kind' in v) return v;
  throw new TypeError(`attribute ${name}: unsupported value`);
}

const SAFETENSORS_TO_DTYPE: Partial<Record<SafetensorsDtype, DType>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

/** How weights reach a graph (defaultWeightStorage in build.ts picks one per target). */
export type WeightStorage =
  /**
   * Point into the checkpoint as-is: a Cast node where its dtype differs, a Transpose node for matrices MatMul
   * takes transposed (no extra disk; onnxruntime folds both into copies at load).
   */
  | 'reference'
  /**
   * Weights in the dtype and layout the kernels use: converted and/or transposed once at build time into one
   * `<model>.onnx.data` file next to the graph (no Cast, no weight Transpose); weights already in that form are
   * still referenced in the checkpoint.
   */
  | 'convert';

/**
 * The weight storage a target's graphs get unless told otherwise: 'convert' on every target, so that a session
 * holds each weight once, in the form its kernels use (bench/RESULTS.md §7). With 'reference', onnxruntime
 * constant-folds each weight's Cast or Transpose into a new copy while the source stays mapped: 1.76× the float32
 * weight bytes at the peak for the SVD-XT UNet on the CPU EP against 1.03×; on WebGPU (lavapipe, a 2/5-width UNet)
 * 2.74× against 1.43×. The CUDA EP folds on the host before copying to the device, like the others (not measured).
 */
const DEFAULT_WEIGHT_STORAGE: Record<GraphTarget, WeightStorage> = {
  cpu: 'convert',
  cuda: 'convert',
  webgpu: 'convert',
};

export function defaultWeightStorage(target: GraphTarget): WeightStorage {
  return DEFAULT_WEIGHT_STORAGE[target];
}

export interface GraphBuilderOptions {
  name: string;
  /** dtype of activations and (after Cast/convert) weights. */
  dtype: FloatDtype;
  weights: WeightSource;
  /** Default `defaultWeightStorage(target)`. */
  weightStorage?: WeightStorage;
  /** Extra opset imports, e.g. `{ 'com.microsoft': 1 }`. ai.onnx is always OPSET (21). */
  opsets?: Record<string, number>;
  /** Execution provider the graph is meant for; default 'cpu'. */
  target?: GraphTarget;
  /** Set for a control-flow body (see `subgraph`): names and constants then come from the enclosing graph. */
  parent?: GraphBuilder;
}

/** Inline threshold: tensors below this are stored in the .onnx itself (ONNX's usual 1 KiB; docs/runtime.md §2). */
export const INLINE_LIMIT = 1024;

/** An initializer whose bytes live in a checkpoint file (location assigned at save time). */
export interface CheckpointInitializer {
  tensor: TensorDef;
  source: TensorInfo;
}

/** An initializer whose bytes the builder must write to the side `.data` file at save time. */
export interface PendingDataInitializer {
  tensor: TensorDef;
  byteLength: number;
  /** Hands the bytes to `write` in order, in one or more pieces (called once, at save; streamed, not held). */
  produce: (write: (piece: Uint8Array) => void) => void;
}

export class GraphBuilder {
  readonly name: string;
  readonly dtype: FloatDtype;
  readonly weights: WeightSource;
  readonly weightStorage: WeightStorage;
  readonly opsets: Record<string, number>;
  readonly target: GraphTarget;

  readonly nodes: NodeDef[] = [];
  readonly inputs: ValueInfoDef[] = [];
  readonly outputs: ValueInfoDef[] = [];
  /** Inline initializers (raw bytes in the .onnx). */
  readonly inlineInitializers: TensorDef[] = [];
  readonly checkpointInitializers: CheckpointInitializer[] = [];
  readonly dataInitializers: PendingDataInitializer[] = [];
  /** Every weight requested, in request order (deduplicated by name). */
  readonly requests: WeightRequest[] = [];
  /** Missing or mis-shaped weights, one line each; `save` throws them as one CheckpointError. */
  readonly problems: string[] = [];

  /** What `weight`/`weightTransposed` returned, by name (transposed requests under `name\0T`). */
  private readonly weightValues = new Map<string, Value>();
  /** The initializer (or Cast of it) each weight name got, and whether it is stored transposed. */
  private readonly storedWeights = new Map<string, { value: Value; transposed: boolean }>();
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, Value>();
  private counter = 0;
  private readonly parent: GraphBuilder | undefined;

  constructor(options: GraphBuilderOptions) {
    this.name = options.name;
    this.dtype = options.dtype;
    this.weights = options.weights;
    this.opsets = { '': OPSET, ...(options.opsets ?? {}) };
    this.target = options.target ?? 'cpu';
    this.weightStorage = options.weightStorage ?? defaultWeightStorage(this.target);
    this.parent = options.parent;
  }

  /** A fresh value name derived from a hint (diffusers module path or op type). */
  fresh(hint: string): string {
    if (this.parent) return this.parent.fresh(hint); // ONNX names are unique across a graph and its bodies
    let name = `${hint}_${this.counter++}`;
    while (this.used.has(name)) name = `${hint}_${this.counter++}`;
    this.used.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.parent) return this.parent.claim(name);
    if (this.used.has(name)) throw new Error(`graph ${this.name}: duplicate value name ${name}`);
    this.used.add(name);
    return name;
  }

  /** Declares a graph input. Strings in `shape` are dynamic axes. */
  input(name: string, shape: Dim[], dtype: DType = this.dtype): Value {
    this.claim(name);
    this.inputs.push({ name, dtype, shape });
    return { name, dtype, shape };
  }

  /** Declares a graph output named `name` (an Identity is added when the value has another name). */
  output(value: Value, name: string, shape: Dim[] = (value.shape as Dim[] | undefined) ?? []): void {
    let v = value;
    if (v.name !== name) {
      this.claim(name);
      this.nodes.push({ opType: 'Identity', inputs: [v.name], outputs: [name], name: `${name}/Identity` });
      v = { name, dtype: value.dtype };
    }
    this.outputs.push({ name, dtype: v.dtype, shape });
  }

  /** Adds one node with one output. Output dtype: `opts.dtype`, else Cast's `to`, Shape → int64, else the first input's. */
  op(
    opType: string,
    inputs: Array<Value | null>,
    attrs: Record<string, AttrInput> = {},
    opts: { name?: string; domain?: string; dtype?: DType; shape?: Dim[] } = {},
  ): Value {
    return this.opMulti(opType, inputs, 1, attrs, opts)[0];
  }

  /** Adds one node with `outputs` outputs (all of the same dtype). */
  opMulti(
    opType: string,
    inputs: Array<Value | null>,
    outputs: number,
    attrs: Record<string, AttrInput> = {},
    opts: { name?: string; domain?: string; dtype?: DType; shape?: Dim[] } = {},
  ): Value[] {
    const hint = opts.name ?? opType;
    const outNames = Array.from({ length: outputs }, () => this.fresh(hint));
    const attributes: Record<string, AttrValue> = {};
    for (const [k, v] of Object.entries(attrs)) attributes[k] = toAttr(k, v);
    this.nodes.push({
      opType,
      inputs: inputs.map((v) => (v ? v.name : '')),
      outputs: outNames,
      name: outNames[0],
      ...(opts.domain ? { domain: opts.domain } : {}),
      attributes,
    });
    let dtype = opts.dtype;
    if (!dtype) {
      if (opType === 'Shape' || opType === 'Size') dtype = 'int64';
      else if (opType === 'Cast') dtype = dtypeFromOnnxCode(attributes.to);
      else dtype = inputs.find((v): v is Value => v !== null)?.dtype ?? this.dtype;
    }
    return outNames.map((name) => ({ name, dtype: dtype!, ...(opts.shape ? { shape: opts.shape } : {}) }));
  }

  /**
   * A control-flow body (Loop's `body` attribute): `define` gets a child builder and the declared inputs (their
   * names are hints, made unique), and returns the body's outputs. The body may use any value of this graph.
   */
  subgraph(name: string, inputs: ValueInfoDef[], define: (body: GraphBuilder, inputs: Value[]) => Value[]): AttrValue {
    const body = new GraphBuilder({
      name,
      dtype: this.dtype,
      weights: this.weights,
      target: this.target,
      parent: this,
    });
    const declared = inputs.map((i): Value => ({ name: this.fresh(i.name), dtype: i.dtype, shape: i.shape ?? [] }));
    for (const d of declared) body.inputs.push({ name: d.name, dtype: d.dtype, shape: [...d.shape!] });
    const outs = define(body, declared);
    for (const o of outs)
      body.outputs.push({ name: o.name, dtype: o.dtype, ...(o.shape ? { shape: [...o.shape] } : {}) });
    return {
      kind: 'graph',
      value: { name, nodes: body.nodes, initializers: [], inputs: body.inputs, outputs: body.outputs },
    };
  }

  /** Casts to `dtype` (no node when it already has it). */
  cast(v: Value, dtype: DType): Value {
    if (v.dtype === dtype) return v;
    return this.op(
      'Cast',
      [v],
      { to: ONNX_CODE[dtype] },
      { dtype, name: `${v.name}/cast`, ...(v.shape ? { shape: [...v.shape] } : {}) },
    );
  }

  /** A float constant in the compute dtype (or `dtype`). Identical small constants are shared. */
  constant(values: ArrayLike<number>, shape: number[], dtype: DType = this.dtype): Value {
    if (this.parent) return this.parent.constant(values, shape, dtype); // bodies read outer initializers
    const bytes = encodeValues(values, dtype);
    const key = bytes.length <= 64 ? `${dtype}|${shape.join(',')}|${Buffer.from(bytes).toString('hex')}` : '';
    const cached = key ? this.constCache.get(key) : undefined;
    if (cached) return cached;
    const name = this.fresh('const');
    const tensor: TensorDef = { name, dtype, dims: shape };
    if (bytes.length >= INLINE_LIMIT && dtype !== 'int64')
      this.dataInitializers.push({ tensor, byteLength: bytes.byteLength, produce: (write) => write(bytes) });
    else this.inlineInitializers.push({ ...tensor, raw: bytes });
    const v: Value = { name, dtype, shape };
    if (key) this.constCache.set(key, v);
    return v;
  }

  /** A scalar (0-d) constant. */
  scalar(value: number, dtype: DType = this.dtype): Value {
    return this.constant([value], [], dtype);
  }

  /** A 1-D int64 constant (shapes, axes, pads). Always inline: ORT's shape inference must read it. */
  int64(values: number[]): Value {
    return this.constant(values, [values.length], 'int64');
  }

  /**
   * A weight by diffusers name, in the compute dtype. The expected shape is recorded; a missing tensor or a
   * shape mismatch is collected in `problems` (and the build goes on, so one error lists them all).
   * A checkpoint shape that differs only by size-1 axes (e.g. a [C,C,1,1] conv stored for a [C,C] linear) is
   * accepted as-is: external data only cares about the byte count.
   */
  weight(name: string, shape: number[]): Value {
    return this.weightAs(name, shape, false);
  }

  /**
   * A [out, in] matrix weight as [in, out], the layout MatMul's B operand wants (see `linear`). With weightStorage
   * 'convert' it is written transposed (and converted) into the `.data` file, so onnxruntime has no Transpose to
   * constant-fold into a second copy at load (bench/RESULTS.md §7); with 'reference' it is a Transpose node.
   */
  weightTransposed(name: string, shape: [number, number]): Value {
    return this.weightAs(name, shape, true);
  }

  private weightAs(name: string, shape: number[], transposed: boolean): Value {
    if (this.parent) throw new Error(`graph ${this.name}: weights belong to the enclosing graph, not to a subgraph`);
    const key = transposed ? `${name}\u0000T` : name;
    const known = this.weightValues.get(key);
    if (known) {
      const prev = this.requests.find((r) => r.name === name)!;
      if (prev.shape.join(',') !== shape.join(',')) {
        this.problems.push(`${name}: requested with two shapes [${prev.shape}] and [${shape}] (builder bug)`);
      }
      return known;
    }
    let stored = this.storedWeights.get(name);
    if (stored) {
      const prev = this.requests.find((r) => r.name === name)!;
      if (prev.shape.join(',') !== shape.join(',')) {
        this.problems.push(`${name}: requested with two shapes [${prev.shape}] and [${shape}] (builder bug)`);
      }
    } else {
      stored = this.storeWeight(name, shape, transposed);
      this.storedWeights.set(name, stored);
    }
    const value =
      stored.transposed === transposed
        ? stored.value
        : this.op('Transpose', [stored.value], { perm: [1, 0] }, { name: `${name}/T`, shape: [shape[1], shape[0]] });
    this.weightValues.set(key, value);
    return value;
  }

  /** Adds the initializer for `name` (transposed only when asked and converted here) and records the request. */
  private storeWeight(name: string, shape: number[], preferTransposed: boolean): { value: Value; transposed: boolean } {
    this.requests.push({ name, shape: [...shape] });
    this.claim(name);
    const found = this.weights.lookup(name);
    const plain = (value: Value) => ({ value, transposed: false });
    const fallback: Value = { name, dtype: this.dtype, shape };
    const transpose = this.weightStorage === 'convert' && preferTransposed && shape.length === 2;
    // a dry run counts the nodes a real build of this storage makes
    if (found.kind === 'placeholder')
      return transpose ? { value: { ...fallback, shape: [shape[1], shape[0]] }, transposed: true } : plain(fallback);
    if (found.kind === 'missing') {
      this.problems.push(`${name}: missing (expected shape [${shape.join(', ')}])`);
      return plain(fallback);
    }
    const info = found.info;
    const storedDtype = SAFETENSORS_TO_DTYPE[info.dtype];
    const sameShape = info.shape.length === shape.length && info.shape.every((d, i) => d === shape[i]);
    const squeezeEqual = squeeze(info.shape).join(',') === squeeze(shape).join(',');
    let problem: string | undefined;
    if (!storedDtype || !['float32', 'float16', 'bfloat16', 'float64'].includes(storedDtype)) {
      problem = `${name}: dtype ${info.dtype} is not a float type (in ${info.file})`;
    } else if (!sameShape && !squeezeEqual) {
      problem = `${name}: expected shape [${shape.join(', ')}], found [${info.shape.join(', ')}] (in ${info.file})`;
    }
    if (problem) {
      this.problems.push(problem);
      return plain(fallback);
    }
    if (storedDtype === this.dtype && !transpose) {
      return plain(this.addCheckpointTensor(name, storedDtype as DType, shape, info));
    }
    if (this.weightStorage === 'convert') {
      const target = this.dtype;
      const byteLength = (info.byteLength / SAFETENSORS_DTYPE_SIZE[info.dtype]) * DTYPE_SIZE[target];
      if (transpose) {
        const dims = [shape[1], shape[0]];
        this.dataInitializers.push({
          tensor: { name, dtype: target, dims },
          byteLength,
          produce: (write) => write(convertTensorTransposed(info, target, shape[0], shape[1])),
        });
        return { value: { name, dtype: target, shape: dims }, transposed: true };
      }
      this.dataInitializers.push({
        tensor: { name, dtype: target, dims: shape },
        byteLength,
        produce: (write) => convertTensorStreaming(info, target, write),
      });
      return plain({ name, dtype: target, shape });
    }
    const stored = this.addCheckpointTensor(name, storedDtype as DType, shape, info);
    return plain(
      this.op('Cast', [stored], { to: ONNX_CODE[this.dtype] }, { dtype: this.dtype, shape, name: `${name}/cast` }),
    );
  }

  private addCheckpointTensor(name: string, dtype: DType, shape: number[], info: TensorInfo): Value {
    if (info.byteLength < INLINE_LIMIT) {
      this.inlineInitializers.push({ name, dtype, dims: shape, raw: readTensorBytes(info) });
    } else {
      this.checkpointInitializers.push({ tensor: { name, dtype, dims: shape }, source: info });
    }
    return { name, dtype, shape };
  }

  /** Throws one CheckpointError listing every missing or mis-shaped weight. */
  assertComplete(): void {
    if (this.problems.length) {
      throw new CheckpointError(
        this.weights.description,
        `${this.problems.length} weight(s) missing or mis-shaped for graph ${this.name}`,
        this.problems,
      );
    }
  }

  /** Checkpoint tensors this graph did not ask for (a naming slip shows up here). */
  unusedWeights(): string[] {
    const asked = new Set(this.requests.map((r) => r.name));
    return this.weights.names().filter((n) => !asked.has(n));
  }

  /** Bytes of checkpoint data the graph references (inline or external). */
  weightBytes(): number {
    let total = 0;
    for (const r of this.requests) {
      const found = this.weights.lookup(r.name);
      if (found.kind === 'found') total += found.info.byteLength;
    }
    return total;
  }
}

function squeeze(shape: readonly number[]): number[] {
  return shape.filter((d) => d !== 1);
}

const ONNX_CODE = ONNX_DTYPE;

function dtypeFromOnnxCode(a: AttrValue | undefined): DType {
  const code = a && a.kind === 'int' ? Number(a.value) : -1;
  const hit = (Object.entries(ONNX_CODE) as [DType, number][]).find(([, c]) => c === code);
  if (!hit) throw new Error(`Cast: unsupported 'to' ${code}`);
  return hit[0];
}

/** Encodes JS numbers as little-endian bytes of `dtype`. */
export function encodeValues(values: ArrayLike<number>, dtype: DType): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(n * DTYPE_SIZE[dtype]);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    switch (dtype) {
      case 'float32':
        dv.setFloat32(i * 4, v, true);
        break;
      case 'float16':
        dv.setUint16(i * 2, numberToHalfBits(v), true);
        break;
      case 'bfloat16':
        dv.setUint16(i * 2, floatToBfloat16(v), true);
        break;
      case 'float64':
        dv.setFloat64(i * 8, v, true);
        break;
      case 'int64':
        dv.setBigInt64(i * 8, BigInt(Math.trunc(v)), true);
        break;
      case 'int32':
        dv.setInt32(i * 4, v, true);
        break;
      case 'int8':
        dv.setInt8(i, v);
        break;
      case 'uint8':
      case 'bool':
        dv.setUint8(i, v);
        break;
    }
  }
  return out;
}
