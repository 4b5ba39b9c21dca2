/**
 * Session memory benchmark: what onnxruntime does to the weights at load, per session option.
 *
 *   npx tsx scripts/bench-memory.ts --model <built model dir> [--roles unet] [--sets default,no-prepack,...]
 *                                   [--latent 8|HxW] [--frames 2] [--threads 2] [--cap-gib 14] [--device cpu|webgpu]
 *   npx tsx scripts/bench-memory.ts --model <dir> --generate 64x64x4,512x512x14:2   (estimate vs measured peak RSS)
 *
 * Each option set loads the graphs in a fresh child process (killed above the RSS cap, which is never more
 * than the memory available minus 3 GiB), then runs one UNet CFG step (batch 2) on a latent×latent sample.
 * It prints one table row per set: load time, RSS after load, peak RSS after the step, step time, and both
 * as a multiple of the bytes the graphs compute with (float32 graphs: 4 bytes per parameter).
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readModelDirectory } from '../src/models/load.js';
import type { GraphRole } from '../src/models/manifest.js';
import { estimateMemory, type MemoryProvider, modelMemoryFacts } from '../src/models/memory.js';
import { createPipeline } from '../src/pipeline/pipeline.js';
import { ModelRunner } from '../src/pipeline/session.js';
import { providerSpec } from '../src/runtime/device.js';
import { InProcessOrtHost, type SessionSpec } from '../src/runtime/ortHost.js';
import {
  bytes,
  duration,
  GiB,
  memAvailableBytes,
  peakRss,
  reportToParent,
  type RssBreakdown,
  rssBreakdown,
  runChild,
} from './bench-util.js';

const SCRIPT = fileURLToPath(import.meta.url);

/** Session option sets by name. */
const SETS: Record<string, Partial<SessionSpec>> = {
  default: { graphOptimizationLevel: 'all' },
  'no-prepack': { graphOptimizationLevel: 'all', extra: { 'session.disable_prepacking': '1' } },
  'no-arena': { graphOptimizationLevel: 'all', enableCpuMemArena: false },
  'no-nchwc': {
    graphOptimizationLevel: 'all',
    extra: { 'optimization.disable_specified_optimizers': 'NchwcTransformer' },
  },
  'no-constfold': {
    graphOptimizationLevel: 'all',
    extra: { 'optimization.disable_specified_optimizers': 'ConstantFolding' },
  },
  'env-allocators': { graphOptimizationLevel: 'all', extra: { 'session.use_env_allocators': '1' } },
  'init-device-allocator': {
    graphOptimizationLevel: 'all',
    extra: { 'session.use_device_allocator_for_initializers': '1' },
  },
  'no-nchwc-no-constfold': {
    graphOptimizationLevel: 'all',
    extra: { 'optimization.disable_specified_optimizers': 'NchwcTransformer,ConstantFolding' },
  },
  'no-nchwc-no-prepack': {
    graphOptimizationLevel: 'all',
    extra: { 'optimization.disable_specified_optimizers': 'NchwcTransformer', 'session.disable_prepacking': '1' },
  },
  extended: { graphOptimizationLevel: 'extended' },
  basic: { graphOptimizationLevel: 'basic' },
  disabled: { graphOptimizationLevel: 'disabled' },
};

interface Report {
  baselineRss: number;
  loadMs: number;
  rssAfterLoad: number;
  peakAfterLoad: number;
  /** /proc/self/status after the sessions were created, and after the steps. */
  afterLoad: RssBreakdown;
  afterSteps: RssBreakdown;
  /** stepPeak: the VmHWM of that step alone (the high-water mark is reset after the load and before each step). */
  steps: Array<{ ms: number; rssAfter: number; stepPeak?: number }>;
  peakRss: number;
  inputType: string;
}

/** The kernel's high-water mark of this process's RSS (VmHWM), in bytes. */
function vmHwm(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : peakRss();
}

/**
 * Resets VmHWM to the current RSS (Linux `/proc/self/clear_refs` 5), so that a step's own peak can be read even when
 * the load peaked higher; false where that is not possible. It resets getrusage's maxRSS too: read the peaks first.
 */
function resetHwm(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

async function child(
  model: string,
  roles: GraphRole[],
  set: string,
  o: { latent: string; frames: number; steps: number; threads: number; device: string },
): Promise<void> {
  const baselineRss = process.memoryUsage().rss;
  const dir = readModelDirectory(model);
  const host = new InProcessOrtHost();
  const t0 = performance.now();
  const runners: Partial<Record<GraphRole, ModelRunner>> = {};
  for (const role of roles) {
    const session = await host.createSession({
      ...SETS[set],
      path: dir.paths[role],
      executionProviders: providerSpec(o.device === 'webgpu' ? 'webgpu' : 'cpu'),
      intraOpNumThreads: o.threads,
    });
    runners[role] = new ModelRunner(role, session);
  }
  const report: Report = {
    baselineRss,
    loadMs: performance.now() - t0,
    rssAfterLoad: process.memoryUsage().rss,
    peakAfterLoad: vmHwm(),
    afterLoad: rssBreakdown(),
    afterSteps: rssBreakdown(),
    steps: [],
    peakRss: 0,
    inputType: '',
  };
  const unet = runners.unet;
  if (unet) {
    const [h, w] = o.latent
      .split('x')
      .map(Number)
      .concat(Number(o.latent.split('x')[0]))
      .slice(0, 2);
    const [B, F, C, D] = [2, o.frames, dir.manifest.unet.inChannels, dir.manifest.imageEncoder.embedDim];
    const sample = Float32Array.from({ length: B * F * C * h * w }, (_, i) => Math.sin(i * 0.37));
    const context = Float32Array.from({ length: B * D }, (_, i) => (i < D ? 0 : Math.cos(i * 0.11)));
    const feeds = {
      sample: unet.tensor('sample', sample, [B, F, C, h, w]),
      timestep: unet.tensor('timestep', Float32Array.of(0.25 * Math.log(700)), []),
      encoder_hidden_states: unet.tensor('encoder_hidden_states', context, [B, 1, D]),
      added_time_ids: unet.tensor('added_time_ids', Float32Array.of(6, 127, 0.02, 6, 127, 0.02), [B, 3]),
    };
    report.inputType = unet.inputType('sample');
    let peak = report.peakAfterLoad;
    for (let i = 0; i < o.steps; i++) {
      const reset = resetHwm();
      const t = performance.now();
      const out = await unet.run(feeds);
      const ms = performance.now() - t;
      if (!out.data.every(Number.isFinite)) throw new Error('UNet output is not finite');
      const stepPeak = vmHwm();
      peak = Math.max(peak, stepPeak);
      report.steps.push({ ms, rssAfter: process.memoryUsage().rss, ...(reset ? { stepPeak } : {}) });
    }
    report.peakRss = peak;
  } else report.peakRss = vmHwm();
  // (its hwm is the last step's own peak when the high-water mark was reset; peakRss is the whole run's)
  report.afterSteps = rssBreakdown();
  reportToParent(report);
}

/** Bytes the graphs compute with (recorded by `buildModel`; else the .onnx file sizes). */
function storedWeightBytes(model: string, roles: GraphRole[]): number {
  const dir = readModelDirectory(model);
  const known = (dir.manifest.source as { computeWeightBytes?: Partial<Record<GraphRole, number>> }).computeWeightBytes;
  return roles.reduce((a, r) => a + (known?.[r] ?? statSync(dir.paths[r]).size), 0);
}

/** What `estimateMemory` says a UNet loaded alone peaks at for the child's CFG step on a latent `o.latent` sample. */
function unetOnlyEstimate(model: string, o: { latent: string; frames: number }): string {
  const facts = modelMemoryFacts(readModelDirectory(model).manifest, model);
  const [h, w = h] = o.latent.split('x').map(Number);
  const s = facts.spatialScale;
  const req = { width: w * s, height: h * s, frames: o.frames, decodeChunkSize: 1, guidance: true };
  const { parts } = estimateMemory(facts, req, 'cpu');
  const totalWeights = Object.values(facts.computeWeightBytes).reduce((a, b) => a + b, 0);
  const unetWeights = (parts.weights * facts.computeWeightBytes.unet) / totalWeights;
  const total = parts.runtime + unetWeights + parts.unet;
  return `${bytes(total)} = ${bytes(parts.runtime)} + ${bytes(unetWeights)} + ${bytes(parts.unet)} (attention ${facts.attention})`;
}

/** The summed VmHWM of this process's descendants (0 when it has none). */
function descendantsHwm(pid = process.pid): number {
  let total = 0;
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const task of tasks) {
    let children: string[] = [];
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {}
    for (const child of children) {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child}/status`, 'utf8'));
        total += (m ? Number(m[1]) * 1024 : 0) + descendantsHwm(Number(child));
      } catch {}
    }
  }
  return total;
}

interface GenerateReport {
  /** This process's peak plus its descendants' (the WebGPU host process): an upper bound of their joint peak. */
  peakRss: number;
  hostProcessPeak: number;
  loadMs: number;
  totalMs: number;
  stepMs: number[];
}

/** One generation (skipVideo) of `spec` = WIDTHxHEIGHTxFRAMES[:chunk] in this process: its peak RSS. */
async function childGenerate(model: string, spec: string, threads: number, device: string): Promise<void> {
  const m = /^(\d+)x(\d+)x(\d+)(?::(\d+))?$/.exec(spec);
  if (!m) throw new Error(`--generate: "${spec}" is not WIDTHxHEIGHTxFRAMES[:chunk]`);
  const [width, height, frames] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t0 = performance.now();
  const pipeline = await createPipeline({ modelDir: model, device, intraOpNumThreads: threads, log: () => {} });
  const loadMs = performance.now() - t0;
  const r = await pipeline.generate(
    {
      image: 'test/fixtures/reference/input_64x128.png',
      width,
      height,
      frames,
      steps: 2,
      seed: 1,
      ...(m[4] ? { decodeChunkSize: Number(m[4]) } : {}),
    },
    { skipVideo: true },
  );
  // the WebGPU provider runs onnxruntime in a child process (ChildProcessOrtHost): count its peak too
  const hostPeak = descendantsHwm();
  await pipeline.close();
  reportToParent({
    peakRss: peakRss() + hostPeak,
    hostProcessPeak: hostPeak,
    loadMs,
    totalMs: r.timings.total,
    stepMs: r.stepTimings,
  } satisfies GenerateReport);
}

/** Runs each generation spec in a child and prints the estimate next to the measured peak RSS. */
async function compareEstimates(
  model: string,
  specs: string[],
  threads: number,
  device: string,
  capGib: number,
): Promise<void> {
  const facts = modelMemoryFacts(readModelDirectory(model).manifest, model);
  console.log(
    `model ${model} (${facts.dtype}, attention ${facts.attention}); 2 steps, CFG, ${threads} threads, device ${device}`,
  );
  const provider: MemoryProvider = device === 'cpu' || device === 'webgpu' ? device : 'cuda';
  // a GPU's memory is not in the process's RSS, except on a CPU-emulated adapter (lavapipe), where "device" buffers
  // are host memory: there the measured peak RSS is compared with host + device
  const estimated = provider === 'cpu' ? 'estimated peak host' : 'estimated host + device';
  console.log(
    `| request (W×H×frames[:chunk]) | ${estimated} | measured peak RSS | estimate / measured | load | total |`,
  );
  console.log('|---|---|---|---|---|---|');
  for (const spec of specs) {
    const [size, chunk] = spec.split(':');
    const [width, height, frames] = size.split('x').map(Number);
    const est = estimateMemory(
      facts,
      { width, height, frames, decodeChunkSize: chunk ? Number(chunk) : frames, guidance: true },
      provider,
    );
    const estBytes = est.hostBytes + est.deviceBytes;
    const split = provider === 'cpu' ? '' : ` (host ${bytes(est.hostBytes)} + device ${bytes(est.deviceBytes)})`;
    const cap = Math.min(capGib * GiB, memAvailableBytes() - 3 * GiB);
    const run = await runChild<GenerateReport>(
      SCRIPT,
      ['--model', model, '--threads', String(threads), '--device', device, '--generate', spec, '--child', 'generate'],
      { rssCapBytes: cap },
    );
    const r = run.result;
    if (!r) {
      const why = run.killedForMemory
        ? `killed at the RSS cap ${bytes(cap)}`
        : `exit ${run.exitCode}: ${run.stderrTail.trim().split('\n').slice(-2).join(' | ')}`;
      console.log(`| ${spec} | ${bytes(estBytes)} | ${why} | | | |`);
      continue;
    }
    console.log(
      `| ${spec} | ${bytes(estBytes)}${split} | ${bytes(r.peakRss)}${r.hostProcessPeak ? ` (onnxruntime's process ${bytes(r.hostProcessPeak)})` : ''} | ${(estBytes / r.peakRss).toFixed(2)} | ${duration(r.loadMs)} | ${duration(r.totalMs)} |`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      roles: { type: 'string', default: 'unet' },
      sets: { type: 'string', default: 'default,no-prepack,no-nchwc,no-constfold,no-arena,basic,disabled' },
      latent: { type: 'string', default: '8' },
      frames: { type: 'string', default: '2' },
      steps: { type: 'string', default: '2' },
      threads: { type: 'string', default: '2' },
      'weight-bytes': { type: 'string' },
      'cap-gib': { type: 'string', default: '14' },
      child: { type: 'string' },
      generate: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
    },
  });
  if (!values.model) throw new Error('--model <built model directory> is required');
  const roles = values.roles!.split(',') as GraphRole[];
  const o = {
    latent: values.latent!,
    frames: Number(values.frames),
    steps: Number(values.steps),
    threads: Number(values.threads),
    device: values.device!,
  };
  if (values.child === 'generate') return childGenerate(values.model, values.generate!, o.threads, values.device!);
  if (values.child) return child(values.model, roles, values.child, o);
  if (values.generate)
    return compareEstimates(
      values.model,
      values.generate.split(','),
      o.threads,
      values.device!,
      Number(values['cap-gib']),
    );

  const weightBytes = values['weight-bytes'] ? Number(values['weight-bytes']) : storedWeightBytes(values.model, roles);
  console.log(
    `model ${values.model}, graphs ${roles.join(',')}, compute weight bytes ${bytes(weightBytes)}; step latent ${o.latent}, ${o.frames} frames, batch 2`,
  );
  const unetOnly = roles.length === 1 && roles[0] === 'unet' ? unetOnlyEstimate(values.model, o) : undefined;
  if (unetOnly)
    console.log(`UNet-only estimate (runtime + UNet weights × load factor + UNet activations): ${unetOnly}`);
  console.log(
    '| option set | load | after load: RSS (anon + file) | peak after load | × | after steps: RSS (anon + file) | peak | × | ' +
      'steps (each step’s own VmHWM) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const set of values.sets!.split(',')) {
    if (!SETS[set]) throw new Error(`--sets: unknown set "${set}" (known: ${Object.keys(SETS).join(', ')})`);
    const cap = Math.min(Number(values['cap-gib']) * GiB, memAvailableBytes() - 3 * GiB);
    const args = [
      '--model',
      values.model,
      '--roles',
      values.roles!,
      '--latent',
      values.latent!,
      '--frames',
      values.frames!,
      '--steps',
      values.steps!,
      '--threads',
      values.threads!,
      '--device',
      values.device!,
      '--child',
      set,
    ];
    const run = await runChild<Report>(SCRIPT, args, { rssCapBytes: cap });
    const r = run.result;
    if (!r) {
      const why = run.killedForMemory
        ? `killed at the RSS cap ${bytes(cap)}`
        : `exit ${run.exitCode}: ${run.stderrTail.trim().split('\n').slice(-2).join(' | ')}`;
      console.log(`| ${set} | ${why} | | | | | | | |`);
      continue;
    }
    const x = (n: number) => `${(n / weightBytes).toFixed(2)}×`;
    const steps = r.steps.map((s) => `${duration(s.ms)}${s.stepPeak ? ` (${bytes(s.stepPeak)})` : ''}`).join(', ');
    const split = (b: RssBreakdown) => `${bytes(b.rss)} (${bytes(b.anon)} + ${bytes(b.file)})`;
    console.log(
      `| ${set} | ${duration(r.loadMs)} | ${split(r.afterLoad)} | ${bytes(r.peakAfterLoad)} | ${x(r.peakAfterLoad)} | ` +
        `${split(r.afterSteps)} | ${bytes(r.peakRss)} | ${x(r.peakRss)} | ${steps} |`,
    );
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exit(1);
});
