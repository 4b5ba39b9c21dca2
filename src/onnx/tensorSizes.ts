/**
 * Static tensor sizes of a graph for concrete input dimensions: every value's shape is propagated node by
 * node (shape arithmetic on small int64 tensors is evaluated), so the largest tensors a run will create are
 * known before the run. The WebGPU guard (runtime/bindingGuard.ts) uses it to refuse graphs that would bind
 * a tensor larger than the adapter allows, which onnxruntime's WebGPU EP computes wrong without an error
 * (docs/webgpu.md). Ops this does not know leave their outputs unknown; they are counted, not guessed.
 */
import { DTYPE_SIZE, type AttrValue, type DType, type GraphDef, type NodeDef, type TensorDef } from './model.js';

export interface TensorSize {
  /** The value's name, or `<node> (inside <op>)` for a kernel's own buffer (attention scores). */
  name: string;
  op: string;
  shape: number[];
  dtype: DType;
  bytes: number;
}

export interface SizeReport {
  /** Every sized tensor, largest first. */
  tensors: TensorSize[];
  /** Node outputs whose shape could not be inferred (unknown op or data-dependent shape). */
  unknown: string[];
}

interface Known {
  dtype: DType;
  shape?: number[];
  /** Element values of small integer/float tensors (shape arithmetic). */
  value?: number[];
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function constantValue(t: TensorDef): number[] | undefined {
  if (!t.raw || t.external || numel(t.dims) > 64) return undefined;
  const view = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
  const n = numel(t.dims);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (t.dtype === 'int64') out.push(Number(view.getBigInt64(i * 8, true)));
    else if (t.dtype === 'int32') out.push(view.getInt32(i * 4, true));
    else if (t.dtype === 'float32') out.push(view.getFloat32(i * 4, true));
    else return undefined;
  }
  return out;
}

function broadcast(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    out.push(x === 1 ? y : y === 1 ? x : Math.max(x, y));
  }
  return out;
}

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const attrInt = (n: NodeDef, k: string, d: number) =>
  n.attributes?.[k] ? Number((n.attributes[k] as { value: number }).value) : d;
const attrInts = (n: NodeDef, k: string): number[] | undefined => {
  const a = n.attributes?.[k] as AttrValue | undefined;
  return a && a.kind === 'ints' ? a.value.map(Number) : undefined;
};

const ELEMENTWISE = new Set([
  'Identity',
  'Cos',
  'Sin',
  'Sigmoid',
  'Gelu',
  'Relu',
  'Tanh',
  'Erf',
  'Exp',
  'Log',
  'Neg',
  'Sqrt',
  'Reciprocal',
  'Abs',
  'Softmax',
  'LayerNormalization',
  'GroupNormalization',
  'InstanceNormalization',
  'Dropout',
  'HardSigmoid',
  'Silu',
  'FastGelu',
  'BiasGelu',
]);
const BINARY = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Equal',
  'Less',
  'Greater',
  'Where',
  'Max',
  'Min',
  'And',
  'Or',
]);
const ARITH: Partial<Record<string, (x: number, y: number) => number>> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => Math.trunc(x / y),
  Max: Math.max,
  Min: Math.min,
};

/** One node's output shapes (and values where cheap), or undefined when unknown. */
function infer(n: NodeDef, ins: Array<Known | undefined>): Array<Known | undefined> {
  const x = ins[0];
  const s = x?.shape;
  const one = (k: Known | undefined) => [k];
  switch (n.opType) {
    case 'Shape': {
      if (!s) return [undefined];
      const start = norm(attrInt(n, 'start', 0), s.length);
      const end = n.attributes?.end ? norm(attrInt(n, 'end', s.length), s.length) : s.length;
      const value = s.slice(start, end);
      return one({ dtype: 'int64', shape: [value.length], value });
    }
    case 'Constant': {
      const t = n.attributes?.value;
      if (t?.kind === 'tensor')
        return one({ dtype: t.value.dtype, shape: t.value.dims, value: constantValue(t.value) });
      const ints = attrInts(n, 'value_ints');
      return one(ints ? { dtype: 'int64', shape: [ints.length], value: ints } : undefined);
    }
    case 'Cast': {
      const to = attrInt(n, 'to', 1);
      const dtype = (Object.entries({
        1: 'float32',
        6: 'int32',
        7: 'int64',
        9: 'bool',
        10: 'float16',
        11: 'float64',
      }).find(([k]) => Number(k) === to)?.[1] ?? 'float32') as DType;
      return one(s ? { dtype, shape: s, value: x?.value } : undefined);
    }
    case 'Unsqueeze':
    case 'Squeeze': {
      const axes = ins[1]?.value ?? attrInts(n, 'axes');
      if (!s) return [undefined];
      let shape: number[];
      if (n.opType === 'Squeeze') {
        const ax = (axes ?? s.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => norm(a, s.length));
        shape = s.filter((_, i) => !ax.includes(i));
      } else {
        if (!axes) return [undefined];
        const rank = s.length + axes.length;
        const ax = axes.map((a) => norm(a, rank));
        shape = [];
        for (let i = 0, j = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : s[j++]);
      }
      return one({ dtype: x!.dtype, shape, value: x?.value });
    }
    case 'Concat': {
      if (ins.some((k) => !k?.shape)) return [undefined];
      const rank = ins[0]!.shape!.length;
      const axis = norm(attrInt(n, 'axis', 0), rank);
      const shape = [...ins[0]!.shape!];
      shape[axis] = ins.reduce((sum, k) => sum + k!.shape![axis], 0);
      const value = ins.every((k) => k!.value) ? ins.flatMap((k) => k!.value!) : undefined;
      return one({ dtype: x!.dtype, shape, value });
    }
    case 'Reshape': {
      const target = ins[1]?.value;
      if (!s || !target) return [undefined];
      const shape = target.map((d, i) => (d === 0 ? s[i] : d));
      const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      return one({ dtype: x!.dtype, shape: shape.map((d) => (d === -1 ? numel(s) / known : d)), value: x?.value });
    }
    case 'Transpose': {
      if (!s) return [undefined];
      const perm = attrInts(n, 'perm') ?? s.map((_, i) => s.length - 1 - i);
      return one({ dtype: x!.dtype, shape: perm.map((p) => s[p]) });
    }
    case 'MatMul': {
      const b = ins[1]?.shape;
      if (!s || !b) return [undefined];
      const a2 = s.length === 1 ? [1, s[0]] : s;
      const b2 = b.length === 1 ? [b[0], 1] : b;
      const shape = [...broadcast(a2.slice(0, -2), b2.slice(0, -2)), a2[a2.length - 2], b2[b2.length - 1]];
      if (s.length === 1) shape.splice(-2, 1);
      if (b.length === 1) shape.pop();
      return one({ dtype: x!.dtype, shape });
    }
    case 'Gemm': {
      const b = ins[1]?.shape;
      if (!s || !b) return [undefined];
      const m = attrInt(n, 'transA', 0) ? s[1] : s[0];
      const nn = attrInt(n, 'transB', 0) ? b[0] : b[1];
      return one({ dtype: x!.dtype, shape: [m, nn] });
    }
    case 'Conv': {
      const w = ins[1]?.shape;
      if (!s || !w) return [undefined];
      const k = w.slice(2);
      const pads = attrInts(n, 'pads') ?? k.flatMap(() => [0, 0]).slice(0, k.length * 2);
      const strides = attrInts(n, 'strides') ?? k.map(() => 1);
      const dil = attrInts(n, 'dilations') ?? k.map(() => 1);
      const spatial = k.map(
        (kk, i) => Math.floor((s[2 + i] + pads[i] + pads[i + k.length] - dil[i] * (kk - 1) - 1) / strides[i]) + 1,
      );
      return one({ dtype: x!.dtype, shape: [s[0], w[0], ...spatial] });
    }
    case 'Resize': {
      if (!s) return [undefined];
      const sizes = ins[3]?.value;
      const scales = ins[2]?.value;
      if (sizes) return one({ dtype: x!.dtype, shape: sizes });
      if (scales) return one({ dtype: x!.dtype, shape: s.map((d, i) => Math.floor(d * scales[i])) });
      return [undefined];
    }
    case 'Split': {
      if (!s) return n.outputs.map(() => undefined);
      const axis = norm(attrInt(n, 'axis', 0), s.length);
      const parts = ins[1]?.value ?? attrInts(n, 'split');
      const count = n.outputs.length;
      const sizes =
        parts ??
        Array.from({ length: count }, (_, i) =>
          Math.min(Math.ceil(s[axis] / count), Math.max(0, s[axis] - i * Math.ceil(s[axis] / count))),
        );
      return sizes.map((p) => ({ dtype: x!.dtype, shape: s.map((d, i) => (i === axis ? p : d)) }));
    }
    case 'Slice': {
      const [starts, ends] = [ins[1]?.value, ins[2]?.value];
      if (!s || !starts || !ends) return [undefined];
      const axes = ins[3]?.value ?? starts.map((_, i) => i);
      const steps = ins[4]?.value ?? starts.map(() => 1);
      const shape = [...s];
      let value = x?.value;
      axes.forEach((a, i) => {
        const ax = norm(a, s.length);
        const clamp = (v: number) => Math.max(0, Math.min(s[ax], v < 0 ? v + s[ax] : v));
        const [b, e] = [clamp(starts[i]), clamp(ends[i])];
        shape[ax] = Math.max(0, Math.ceil((e - b) / steps[i]));
        if (value && s.length === 1) value = value.slice(b, e);
      });
      return one({ dtype: x!.dtype, shape, value: s.length === 1 ? value : undefined });
    }
    case 'Gather': {
      const idx = ins[1];
      if (!s || !idx?.shape) return [undefined];
      const axis = norm(attrInt(n, 'axis', 0), s.length);
      const shape = [...s.slice(0, axis), ...idx.shape, ...s.slice(axis + 1)];
      const value =
        s.length === 1 && x?.value && idx.value ? idx.value.map((i) => x.value![i < 0 ? i + s[0] : i]) : undefined;
      return one({ dtype: x!.dtype, shape, value });
    }
    case 'Expand': {
      const target = ins[1]?.value;
      return one(s && target ? { dtype: x!.dtype, shape: broadcast(s, target) } : undefined);
    }
    case 'Tile': {
      const reps = ins[1]?.value;
      return one(s && reps ? { dtype: x!.dtype, shape: s.map((d, i) => d * reps[i]) } : undefined);
    }
    case 'Range': {
      const [a, b, d] = [ins[0]?.value?.[0], ins[1]?.value?.[0], ins[2]?.value?.[0]];
      if (a === undefined || b === undefined || d === undefined) return [undefined];
      return one({ dtype: x!.dtype, shape: [Math.max(0, Math.ceil((b - a) / d))] });
    }
    case 'Pad': {
      const pads = ins[1]?.value ?? attrInts(n, 'pads');
      if (!s || !pads) return [undefined];
      const axes = (ins[3]?.value ?? s.map((_, i) => i)).map((a) => norm(a, s.length));
      const shape = [...s];
      axes.forEach((a, i) => (shape[a] += pads[i] + pads[i + axes.length]));
      return one({ dtype: x!.dtype, shape });
    }
    case 'ConstantOfShape': {
      const shape = ins[0]?.value;
      return one(shape ? { dtype: 'float32', shape } : undefined);
    }
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceMax': {
      if (!s) return [undefined];
      const axes = (ins[1]?.value ?? attrInts(n, 'axes') ?? s.map((_, i) => i)).map((a) => norm(a, s.length));
      const keep = attrInt(n, 'keepdims', 1);
      const shape = keep ? s.map((d, i) => (axes.includes(i) ? 1 : d)) : s.filter((_, i) => !axes.includes(i));
      return one({ dtype: x!.dtype, shape });
    }
    case 'MultiHeadAttention': {
      const v = ins[2]?.shape;
      if (!s || !v) return [undefined];
      return one({ dtype: x!.dtype, shape: [s[0], s[1], v[2]] });
    }
  }
  if (ELEMENTWISE.has(n.opType))
    return [s ? { dtype: x!.dtype, shape: s } : undefined, ...n.outputs.slice(1).map(() => undefined)];
  if (BINARY.has(n.opType)) {
    const shapes = ins.map((k) => k?.shape);
    if (shapes.some((sh) => !sh)) return [undefined];
    const shape = shapes.reduce((a, b) => broadcast(a!, b!))!;
    const fn = ARITH[n.opType];
    const [a, b] = [ins[0]?.value, ins[1]?.value];
    const value =
      fn && a && b && numel(shape) <= 64
        ? Array.from({ length: numel(shape) }, (_, i) => fn(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i]))
        : undefined;
    const dtype = /Equal|Less|Greater|And|Or/.test(n.opType)
      ? 'bool'
      : n.opType === 'Where'
        ? ins[1]!.dtype
        : ins[0]!.dtype;
    return [{ dtype, shape, value }];
  }
  return n.outputs.map(() => undefined);
}

/** Sizes of every tensor `graph` creates for the given input dimensions (symbolic dims must all be given). */
export function tensorSizes(graph: GraphDef, inputDims: Record<string, number[]>): SizeReport {
  const known = new Map<string, Known>();
  const tensors: TensorSize[] = [];
  const add = (name: string, op: string, k: Known) => {
    if (!k.shape) return;
    tensors.push({ name, op, shape: k.shape, dtype: k.dtype, bytes: numel(k.shape) * DTYPE_SIZE[k.dtype] });
  };
  for (const t of graph.initializers) {
    const k: Known = { dtype: t.dtype, shape: t.dims, value: constantValue(t) };
    known.set(t.name, k);
    add(t.name, 'initializer', k);
  }
  for (const input of graph.inputs) {
    if (known.has(input.name)) continue;
    const dims = inputDims[input.name];
    if (!dims) throw new Error(`tensorSizes: no dimensions given for input "${input.name}"`);
    const k: Known = { dtype: input.dtype, shape: dims };
    known.set(input.name, k);
    add(input.name, 'input', k);
  }
  const unknown: string[] = [];
  propagate(graph.nodes, known, add, unknown);
  tensors.sort((a, b) => b.bytes - a.bytes);
  return { tensors, unknown };
}

type Add = (name: string, op: string, k: Known) => void;

function propagate(nodes: NodeDef[], known: Map<string, Known>, add: Add, unknown: string[]): void {
  for (const n of nodes) {
    const ins = n.inputs.map((i) => (i ? known.get(i) : undefined));
    const outs = n.opType === 'Loop' ? loop(n, ins, known, add, unknown) : infer(n, ins);
    n.outputs.forEach((name, i) => {
      const k = outs[i];
      if (!name) return;
      if (!k?.shape) {
        unknown.push(name);
        return;
      }
      known.set(name, k);
      add(name, n.opType, k);
    });
    // fused attention kernels that are not flash kernels keep [B, heads, Sq, Sk] scores in a buffer of their own
    if (n.opType === 'MultiHeadAttention') {
      const [q, kk] = [known.get(n.inputs[0])?.shape, known.get(n.inputs[1])?.shape];
      if (q && kk)
        add(`${n.name ?? n.outputs[0]} (scores inside MultiHeadAttention)`, n.opType, {
          dtype: 'float32',
          shape: [q[0], attrInt(n, 'num_heads', 1), q[1], kk[1]],
        });
    }
  }
}

/**
 * ONNX Loop with a known trip count and no loop-carried state besides `cond` (how the chunked attention of
 * onnx/layers/attention.ts uses it): the body is sized once (every iteration has the same shapes; its tensors
 * count once, as one iteration's buffers), and each scan output stacks the body's output over the trips.
 */
function loop(
  n: NodeDef,
  ins: Array<Known | undefined>,
  outer: Map<string, Known>,
  add: Add,
  unknown: string[],
): Array<Known | undefined> {
  const body = n.attributes?.body;
  const trips = ins[0]?.value?.[0];
  const carried = n.inputs.length - 2;
  if (body?.kind !== 'graph' || trips === undefined || carried !== 0) return n.outputs.map(() => undefined);
  const g = body.value;
  const scope = new Map(outer);
  for (const t of g.initializers) scope.set(t.name, { dtype: t.dtype, shape: t.dims, value: constantValue(t) });
  scope.set(g.inputs[0].name, { dtype: 'int64', shape: [], value: [0] });
  scope.set(g.inputs[1].name, { dtype: 'bool', shape: [] });
  propagate(g.nodes, scope, (name, op, k) => add(`${n.name ?? 'Loop'}/${name}`, op, k), unknown);
  // body outputs: cond, then the scan outputs
  return g.outputs.slice(1).map((o) => {
    const k = scope.get(o.name);
    return k?.shape ? { dtype: k.dtype, shape: [trips, ...k.shape] } : undefined;
  });
}
