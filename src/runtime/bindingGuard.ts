/**
 * The WebGPU binding-limit guard. onnxruntime's WebGPU EP binds every tensor a kernel touches as one storage
 * buffer; a tensor larger than the device's maxStorageBufferBindingSize is computed wrong, silently
 * (docs/webgpu.md has the one-op reproduction). So before a graph runs at a given input size, every tensor
 * it will create is sized (onnx/tensorSizes.ts) and the run is refused, with what to change, when one would
 * exceed the limit. Results are cached per graph and input dimensions.
 */
import { SvdError } from '../errors.js';
import type { GraphDef } from '../onnx/model.js';
import { readGraph } from '../onnx/read.js';
import { tensorSizes, type TensorSize } from '../onnx/tensorSizes.js';

/** A run refused because a tensor would not fit one WebGPU storage-buffer binding. */
export class BindingLimitError extends SvdError {
  constructor(
    readonly graph: string,
    readonly limit: number,
    readonly tensors: TensorSize[],
    message: string,
  ) {
    super('webgpu_binding_limit', message);
  }
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(b < 2 ** 24 ? 1 : 0)} MiB`;

export interface GuardOptions {
  /** Bytes; the adapter's maxStorageBufferBindingSize. */
  limit: number;
  /** What the user can change, appended to the refusal (e.g. "use a smaller --decode-chunk-size"). */
  advice?: string;
  /** How the graph's inputs follow the run's size: lets the refusal name the largest size that fits. */
  axes?: RunAxes;
}

/** A run's size in the user's terms: pixels, frames (per call) and videos per call (the CFG batch). */
export interface RunSize {
  width: number;
  height: number;
  frames: number;
  batch: number;
}

/** The map between a graph's input dims and the run's size (per graph role, src/pipeline/session.ts). */
export interface RunAxes {
  size(inputDims: Record<string, number[]>): RunSize;
  dims(size: RunSize): Record<string, number[]>;
  /** Width and height stay multiples of this many pixels. */
  cell: number;
  /** What the frame axis is called in advice (e.g. "frames", "frames per decode chunk"); absent: no frame axis. */
  frames?: string;
  /** How a batch of 1 is asked for (e.g. "cfgBatch split"); absent: the batch is not the user's to change. */
  batchOne?: string;
}

/** Checks one graph at given input dims; loads the graph once. */
export class BindingGuard {
  private graph: GraphDef | undefined;
  private readonly checked = new Set<string>();

  constructor(
    readonly path: string,
    readonly options: GuardOptions,
    private readonly load: (path: string) => GraphDef = readGraph,
  ) {}

  /** The tensors larger than the limit at these input dims (largest first); empty when the run is safe. */
  oversized(inputDims: Record<string, number[]>): TensorSize[] {
    this.graph ??= this.load(this.path);
    return tensorSizes(this.graph, inputDims).tensors.filter((t) => t.bytes > this.options.limit);
  }

  /** Throws BindingLimitError when a tensor of the run would exceed the limit. */
  check(inputDims: Record<string, number[]>): void {
    const key = JSON.stringify(inputDims);
    if (this.checked.has(key)) return;
    const over = this.oversized(inputDims);
    if (over.length) throw this.refusal(inputDims, over);
    this.checked.add(key);
  }

  private whatFits(inputDims: Record<string, number[]>, axes: RunAxes): string {
    return whatFitsOn((s) => this.oversized(axes.dims(s)).length === 0, axes.size(inputDims), axes);
  }

  private refusal(inputDims: Record<string, number[]>, over: TensorSize[]): BindingLimitError {
    const dims = Object.entries(inputDims)
      .map(([k, v]) => `${k} [${v.join(',')}]`)
      .join(', ');
    const worst = over
      .slice(0, 3)
      .map((t) => `${t.name} (${t.op}) [${t.shape.join(',')}] ${t.dtype} = ${MiB(t.bytes)}`);
    const message =
      `${this.path}: refusing to run on WebGPU with ${dims}: ${over.length} tensor${over.length === 1 ? '' : 's'} would be ` +
      `larger than this adapter's storage-buffer binding limit of ${MiB(this.options.limit)}, which onnxruntime's ` +
      `WebGPU provider computes wrong without an error (see docs/webgpu.md). Largest: ${worst.join('; ')}. ` +
      (this.options.axes ? `${this.whatFits(inputDims, this.options.axes)} ` : '') +
      (this.options.advice ??
        'Use a smaller size or fewer frames, a GPU whose adapter allows larger bindings, or --device cpu.');
    return new BindingLimitError(this.path, this.options.limit, over, message);
  }
}

/** The largest width×height (same aspect ratio, same frames) and frame count that fit, and whether batch 1 fits. */
function whatFitsOn(fits: (s: RunSize) => boolean, now: RunSize, axes: RunAxes): string {
  const said: string[] = [];
  if (axes.batchOne && now.batch > 1 && fits({ ...now, batch: 1 })) {
    said.push(`With ${axes.batchOne} (one video per call, the same result) this run fits.`);
  }
  // sides shrink together; the fit is monotonic in the size, so bisect on the width's multiple of the cell
  const sizeAt = (k: number) => {
    const width = k * axes.cell;
    return { ...now, width, height: Math.floor((width * now.height) / now.width / axes.cell) * axes.cell };
  };
  let best: RunSize | undefined;
  for (let lo = 1, hi = Math.floor(now.width / axes.cell) - 1; lo <= hi; ) {
    const mid = Math.floor((lo + hi) / 2);
    const s = sizeAt(mid);
    if (s.height >= axes.cell && fits(s)) {
      best = s;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  const where = axes.frames ? ` at ${now.frames} ${axes.frames}` : '';
  said.push(
    best
      ? `The largest size that fits this adapter${where} is ${best.width}x${best.height}.`
      : `No size fits this adapter${where}.`,
  );
  if (axes.frames) {
    let most = 0;
    for (let lo = 1, hi = now.frames - 1; lo <= hi; ) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits({ ...now, frames: mid })) {
        most = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    said.push(
      most
        ? `At ${now.width}x${now.height} at most ${most} ${axes.frames} fit.`
        : `At ${now.width}x${now.height} not even 1 of the ${axes.frames} fits.`,
    );
  }
  return said.join(' ');
}

/** Frames per decoder call that keep every tensor within `limit`, from the graph sized at one frame. */
export function framesWithinLimit(guard: BindingGuard, oneFrame: Record<string, number[]>, frames: number): number {
  let best = 0;
  // tensors of the temporal decoder grow linearly with the frame count, so bisect on the count
  let lo = 1;
  let hi = frames;
  const scaled = (n: number) => Object.fromEntries(Object.entries(oneFrame).map(([k, v]) => [k, [n, ...v.slice(1)]]));
  while (lo <= hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (guard.oversized(scaled(mid)).length === 0) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}
