/**
 * The four model sessions of a pipeline and the dtype handling around them: each graph's input and
 * output dtypes are read from the model (fp32 or fp16), never assumed.
 */
import { ModelFormatError } from '../errors.js';
import { checkCameraInput, checkGraphContract, readModelDirectory, type ModelDirectory } from '../models/load.js';
import { GRAPH_CONTRACT, GRAPH_ROLES, type GraphRole } from '../models/manifest.js';
import { DeviceSessionFactory, parseDevice, type DeviceDecision } from '../runtime/device.js';
import { InProcessOrtHost, WorkerOrtHost, type HostedSession, type OrtHost } from '../runtime/ortHost.js';
import type { TensorData } from '../runtime/tensor.js';
import { float16ToFloat32, float32ToFloat16 } from '../tensor/float16.js';

export interface ModelSessionsOptions {
  device?: string;
  /** Run onnxruntime in a worker thread (default true) so the event loop stays responsive. */
  inWorker?: boolean;
  host?: OrtHost;
  intraOpNumThreads?: number;
  warn?: (message: string) => void;
}

/** A session with float32 in/out at its boundary, whatever dtype the graph uses inside. */
export class ModelRunner {
  constructor(readonly role: GraphRole, readonly session: HostedSession) {}

  inputType(name: string): 'float32' | 'float16' {
    const info = this.session.inputs.find((v) => v.name === name);
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
    const outputs = await this.session.run(feeds);
    const name = GRAPH_CONTRACT[this.role].output;
    const out = outputs[name];
    if (!out) throw new ModelFormatError(this.session.path, `returned no output "${name}"`);
    const data = out.type === 'float16' ? float16ToFloat32(out.data as Uint16Array) : (out.data as Float32Array);
    return { data, dims: out.dims };
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
  const ownsHost = !options.host;
  const host = options.host ?? (options.inWorker === false ? new InProcessOrtHost() : new WorkerOrtHost());
  const factory = new DeviceSessionFactory(host, parseDevice(options.device ?? 'auto'), options.warn, {
    intraOpNumThreads: options.intraOpNumThreads,
  });
  const opened: HostedSession[] = [];
  const close = async () => {
    for (const s of opened) await s.release().catch(() => {});
    if (ownsHost) await host.close();
  };
  try {
    const runners = {} as Record<GraphRole, ModelRunner>;
    for (const role of GRAPH_ROLES) {
      const session = await factory.open(model.paths[role]);
      opened.push(session);
      checkGraphContract(role, session);
      if (role === 'unet') checkCameraInput(session, model.manifest.unet.cameraPoseDim);
      runners[role] = new ModelRunner(role, session);
    }
    return { model, runners, device: factory.provider!, close };
  } catch (err) {
    await close();
    throw err;
  }
}
