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
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readModelDirectory } from '../src/models/load.js';
import type { GraphRole } from '../src/models/manifest.js';
import { estimateMemory, modelMemoryFacts } from '../src/models/memory.js';
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
  steps: Array<{ ms: number; rssAfter: number }>;
  peakRss: number;
  inputType: string;
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
    peakAfterLoad: peakRss(),
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
    const [B, F, C] = [2, o.frames, 8];
    const sample = Float32Array.from({ length: B * F * C * h * w }, (_, i) => Math.sin(i * 0.37));
    const context = Float32Array.from({ length: B * 1024 }, (_, i) => (i < 1024 ? 0 : Math.cos(i * 0.11)));
    const feeds = {
      sample: unet.tensor('sample', sample, [B, F, C, h, w]),
      timestep: unet.tensor('timestep', Float32Array.of(0.25 * Math.log(700)), []),
      encoder_hidden_states: unet.tensor('encoder_hidden_states', context, [B, 1, 1024]),
      added_time_ids: unet.tensor('added_time_ids', Float32Array.of(6, 127, 0.02, 6, 127, 0.02), [B, 3]),
    };
    report.inputType = unet.inputType('sample');
    for (let i = 0; i < o.steps; i++) {
      const t = performance.now();
      const out = await unet.run(feeds);
      if (!out.data.every(Number.isFinite)) throw new Error('UNet output is not finite');
      report.steps.push({ ms: performance.now() - t, rssAfter: process.memoryUsage().rss });
    }
  }
  report.peakRss = peakRss();
  report.afterSteps = rssBreakdown();
  reportToParent(report);
}

/** Bytes the graphs compute with (recorded by `buildModel`; else the .onnx file sizes). */
function storedWeightBytes(model: string, roles: GraphRole[]): number {
  const dir = readModelDirectory(model);
  const known = (dir.manifest.source as { computeWeightBytes?: Partial<Record<GraphRole, number>> }).computeWeightBytes;
  return roles.reduce((a, r) => a + (known?.[r] ?? statSync(dir.paths[r]).size), 0);
}

interface GenerateReport {
  peakRss: number;
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
  await pipeline.close();
  reportToParent({
    peakRss: peakRss(),
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
  console.log(
    '| request (W×H×frames[:chunk]) | estimated peak host | measured peak RSS | estimate / measured | load | total |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const spec of specs) {
    const [size, chunk] = spec.split(':');
    const [width, height, frames] = size.split('x').map(Number);
    const est = estimateMemory(
      facts,
      { width, height, frames, decodeChunkSize: chunk ? Number(chunk) : frames, guidance: true },
      device === 'cpu' ? 'cpu' : 'cuda',
    );
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
      console.log(`| ${spec} | ${bytes(est.hostBytes)} | ${why} | | | |`);
      continue;
    }
    console.log(
      `| ${spec} | ${bytes(est.hostBytes)} | ${bytes(r.peakRss)} | ${(est.hostBytes / r.peakRss).toFixed(2)} | ${duration(r.loadMs)} | ${duration(r.totalMs)} |`,
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
  console.log(
    '| option set | load | after load: RSS (anon + file) | peak after load | × | after steps: RSS (anon + file) | peak | × | steps |',
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
    const steps = r.steps.map((s) => duration(s.ms)).join(', ');
    const split = (b: RssBreakdown) => `${bytes(b.rss)} (${bytes(b.anon)} + ${bytes(b.file)})`;
    console.log(
      `| ${set} | ${duration(r.loadMs)} | ${split(r.afterLoad)} | ${bytes(r.afterLoad.hwm)} | ${x(r.afterLoad.hwm)} | ${split(r.afterSteps)} | ${bytes(r.afterSteps.hwm)} | ${x(r.afterSteps.hwm)} | ${steps} |`,
    );
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exit(1);
});
