/**
 * The four model sessions of a pipeline and the dtype handling around them: each graph's input and
 * output dtypes are read from the model (fp32 or fp16), never assumed.
 */
import { intraOpThreads } from '../runtime/cpu.js';
import { ModelFormatError } from '../errors.js';
import { checkCameraInput, checkGraphContract, readModelDirectory, type ModelDirectory } from '../models/load.js';
import { GRAPH_CONTRACT, GRAPH_ROLES, type GraphRole, manifestDtype, type ModelManifest } from '../models/manifest.js';
import { BindingGuard, type RunAxes, type RunSize } from '../runtime/bindingGuard.js';
import {
  DeviceSessionFactory,
  findCudaProviderLibrary,
  parseDevice,
  type DeviceDecision,
  type ParsedDevice,
} from '../runtime/device.js';
import {
  ChildProcessOrtHost,
  InProcessOrtHost,
  WorkerOrtHost,
  type HostedSession,
  type OrtHost,
  type SessionSpec,
} from '../runtime/ortHost.js';
import { DEFAULT_BINDING_LIMIT, isLoaderNoise, webGpuAdapterOnce } from '../runtime/webgpu.js';
import type { TensorData } from '../runtime/tensor.js';
import { unetInputDims } from './denoise.js';
import { float16ToFloat32, float32ToFloat16 } from '../tensor/float16.js';
import type { FloatDtype } from '../tensor/float16.js';

export interface ModelSessionsOptions {
  device?: string;
  /** Run onnxruntime in a worker thread (default true) so the event loop stays responsive. */
  inWorker?: boolean;
  host?: OrtHost;
  intraOpNumThreads?: number;
  /** Session options over the defaults (benchmarks try arena, memory pattern, execution mode this way). */
  sessionOptions?: Partial<Omit<SessionSpec, 'path' | 'executionProviders'>>;
  warn?: (message: string) => void;
  /**
   * WebGPU only: the storage-buffer binding limit in bytes the guard enforces (default: the adapter's, else
   * 128 MiB; SVD_WEBGPU_BINDING_LIMIT overrides). Lowering it is how the guard is tested.
   */
  bindingLimit?: number;
}

/**
 * A session with float32 in/out at its boundary, whatever dtype the graph uses inside. With `reopen` it can be
 * released between uses (its weights and memory arena go back) and opens again on the next run.
 */
export class ModelRunner {
  private current: HostedSession | undefined;
  /** The graph's inputs, known after the session is released too. */
  private readonly inputs: HostedSession['inputs'];

  constructor(
    readonly role: GraphRole,
    session: HostedSession,
    /** WebGPU: refuses runs whose tensors exceed the binding limit. */
    readonly guard?: BindingGuard,
    private readonly reopen?: () => Promise<HostedSession>,
  ) {
    this.current = session;
    this.inputs = session.inputs;
  }

  inputType(name: string): FloatDtype {
    const info = this.inputs.find((v) => v.name === name);
    return info?.type === 'float16' ? 'float16' : 'float32';
  }

  /** Converts a float32 array to the tensor the graph wants for input `name`. */
  tensor(name: string, data: Float32Array, dims: number[]): TensorData {
    return this.inputType(name) === 'float16'
      ? { type: 'float16', data: float32ToFloat16(data), dims }
      : { type: 'float32', data, dims };
  }

  /** Runs the graph and returns its contract output as float32. */
  async run(feeds: Record<string, TensorData>): Promise<{ data: Float32Array; dims: number[] }> {
    this.guard?.check(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.dims])));
    const session = await this.open();
    const outputs = await session.run(feeds);
    const name = GRAPH_CONTRACT[this.role].output;
    const out = outputs[name];
    if (!out) throw new ModelFormatError(session.path, `returned no output "${name}"`);
    const data = out.type === 'float16' ? float16ToFloat32(out.data as Uint16Array) : (out.data as Float32Array);
    return { data, dims: out.dims };
  }

  /** Whether the session is open now. */
  get isOpen(): boolean {
    return this.current !== undefined;
  }

  /** The open session (a released one reopens only through `run`). */
  get session(): HostedSession {
    if (!this.current) throw new ModelFormatError(this.role, 'session is released');
    return this.current;
  }

  private async open(): Promise<HostedSession> {
    if (this.current) return this.current;
    if (!this.reopen) throw new ModelFormatError(this.role, 'session was closed');
    this.current = await this.reopen();
    return this.current;
  }

  /** Releases the session until the next run, when it can reopen; otherwise keeps it. */
  async release(): Promise<void> {
    if (this.reopen) await this.close();
  }

  /** Releases the session for good (unless it reopens on a later run). */
  async close(): Promise<void> {
    const s = this.current;
    this.current = undefined;
    await s?.release();
  }
}

export interface ModelSessions {
  model: ModelDirectory;
  runners: Record<GraphRole, ModelRunner>;
  device: DeviceDecision;
  close(): Promise<void>;
}

/** Opens and checks the four graphs of a model directory. */
export async function openModelSessions(dir: string, options: ModelSessionsOptions = {}): Promise<ModelSessions> {
  const model = readModelDirectory(dir);
  const device = parseDevice(options.device ?? 'auto');
  const ownsHost = !options.host;
  const host = options.host ?? (await defaultHost(device, options.inWorker !== false));
  const factory = new DeviceSessionFactory(host, device, options.warn, {
    // one thread per physical core (or SVD_THREADS), set explicitly: onnxruntime's default counts SMT siblings
    intraOpNumThreads: options.intraOpNumThreads ?? intraOpThreads(),
    ...options.sessionOptions,
  });
  const opened: HostedSession[] = [];
  const runners = {} as Record<GraphRole, ModelRunner>;
  const close = async () => {
    const built = Object.values(runners);
    for (const s of opened.slice(built.length)) await s.release().catch(() => {});
    for (const r of built) await r.close().catch(() => {});
    if (ownsHost) await host.close();
  };
  try {
    for (const role of GRAPH_ROLES) {
      const session = await factory.open(model.paths[role], manifestDtype(model.manifest));
      opened.push(session);
      checkGraphContract(role, session);
      if (role === 'unet') checkCameraInput(session, model.manifest.unet.cameraPoseDim);
      const decision = factory.provider!;
      const guard =
        decision.provider === 'webgpu'
          ? new BindingGuard(model.paths[role], {
              limit: bindingLimit(decision, options),
              axes: guardAxes(role, model.manifest),
            })
          : undefined;
      runners[role] = new ModelRunner(role, session, guard, () =>
        factory.open(model.paths[role], manifestDtype(model.manifest)),
      );
    }
    return { model, runners, device: factory.provider!, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * WebGPU sessions run in a child process so that the Vulkan loader's and Dawn's stderr lines can be filtered
 * (runtime/ortHost.ts); everything else in a worker thread, or on this thread when asked.
 */
async function defaultHost(device: ParsedDevice, inWorker: boolean): Promise<OrtHost> {
  const webgpu =
    device.kind === 'webgpu' ||
    (device.kind === 'auto' && !findCudaProviderLibrary() && (await webGpuAdapterOnce()).adapter?.emulated === false);
  if (webgpu) return new ChildProcessOrtHost((line) => !isLoaderNoise(line));
  return inWorker ? new WorkerOrtHost() : new InProcessOrtHost();
}

/** How each graph's inputs follow the run's size, for the guard's refusal ("the largest size that fits ..."). */
export function guardAxes(role: GraphRole, m: ModelManifest): RunAxes | undefined {
  const scale = m.vae.spatialScaleFactor;
  const cell = Math.max(64, scale * m.unet.latentMultiple);
  const latent = (s: RunSize) => [s.height / scale, s.width / scale];
  if (role === 'unet') {
    return {
      cell,
      frames: 'frames',
      batchOne: 'cfgBatch split',
      size: (d) => {
        const [batch, frames, , h, w] = d.sample;
        return { batch, frames, height: h * scale, width: w * scale };
      },
      dims: (s) => {
        const [height, width] = latent(s);
        const shape = { frames: s.frames, channels: m.vae.latentChannels, height, width };
        return unetInputDims(shape, m.unet.inChannels, m.imageEncoder.embedDim, s.batch, m.unet.cameraPoseDim);
      },
    };
  }
  if (role === 'vaeDecoder') {
    return {
      cell,
      frames: 'frames per decode chunk',
      size: (d) => {
        const [frames, , h, w] = d.latent;
        return { batch: 1, frames, height: h * scale, width: w * scale };
      },
      dims: (s) => ({ latent: [s.frames, m.vae.latentChannels, ...latent(s)] }),
    };
  }
  if (role === 'vaeEncoder') {
    return {
      cell,
      size: (d) => ({ batch: 1, frames: 1, height: d.sample[2], width: d.sample[3] }),
      dims: (s) => ({ sample: [1, 3, s.height, s.width] }),
    };
  }
  return undefined; // CLIP's input is always imageSize²
}

function bindingLimit(decision: DeviceDecision, options: ModelSessionsOptions): number {
  const fromEnv = Number(process.env.SVD_WEBGPU_BINDING_LIMIT);
  if (options.bindingLimit) return options.bindingLimit;
  if (Number.isFinite(fromEnv) && fromEnv > 0) return fromEnv;
  return decision.adapter?.maxStorageBufferBindingSize ?? DEFAULT_BINDING_LIMIT;
}
