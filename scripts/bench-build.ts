/**
 * Full-size build benchmark (SVD-XT shapes, random weights):
 *
 *   npx tsx scripts/bench-build.ts [--dir /tmp/svd-bench] [--seed N] [--cap-gib 12] [--loads float16:all:split,float16:basic,...]
 *                                  [--latent 8] [--frames 2]      (the UNet step's latent side and frame count)
 *                                  [--roles imageEncoder,vaeEncoder,vaeDecoder,unet]   (the graphs to load)
 *
 * 1. Writes (once) a seeded random F16 SVD-XT checkpoint from models/configs/svd-xt into <dir>/checkpoint
 *    (≈ 4.2 GiB, streamed one tensor at a time; refuses when the disk has too little room).
 * 2. Runs `buildModel` for float16 and for float32 (fp16 weights converted into `.data`, the CPU default since
 *    builder 4), each in a child process, and
 *    reports wall time and the child's peak RSS (goals: ≤ 10 s, ≤ 1 GiB), node and op counts.
 * 3. In child processes, creates onnxruntime CPU sessions for the four graphs under several session
 *    settings (`--loads`: dtype, graphOptimizationLevel, all graphs in one process or one per process) and
 *    reports load time and peak RSS against the stored weight bytes (goal ≤ 1.2×), then runs one UNet step
 *    on a 64×64 image (latent 8×8), 2 frames, CFG batch 2, and checks the output is finite. Every child is
 *    killed at an RSS cap (`--cap-gib`, default 12, and never above what the machine has available minus
 *    3 GiB) rather than allowed to exhaust a shared machine; that is reported as a failure.
 *
 * Results go to stdout and <dir>/bench-build.json.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildModel } from '../src/models/build.js';
import { readModelDirectory } from '../src/models/load.js';
import { GRAPH_ROLES, type GraphRole } from '../src/models/manifest.js';
import {
  checkpointTensorLists,
  parameterCount,
  readCheckpointConfigs,
  writeRandomCheckpointDirStreaming,
} from '../src/models/randomCheckpoint.js';
import { ModelRunner } from '../src/pipeline/session.js';
import { InProcessOrtHost } from '../src/runtime/ortHost.js';
import { unetNodeCounts } from '../src/unet/build.js';
import { parseUnetConfig } from '../src/unet/config.js';
import {
  bytes,
  duration,
  freeDiskBytes,
  GiB,
  memAvailableBytes,
  MiB,
  peakRss,
  reportToParent,
  runChild,
} from './bench-util.js';

const SCRIPT = fileURLToPath(import.meta.url);
const CONFIGS = resolve(fileURLToPath(new URL('../models/configs/svd-xt', import.meta.url)));

type Dtype = 'float32' | 'float16';

interface BuildReport {
  buildMs: number;
  peakRss: number;
  graphs: Record<
    GraphRole,
    {
      nodeCount: number;
      opCounts: Record<string, number>;
      initializerCount: number;
      weightBytes: number;
      dataBytes: number;
      unused: number;
    }
  >;
}

type OptLevel = 'all' | 'extended' | 'basic' | 'disabled';

interface LoadReport {
  level: OptLevel;
  roles: GraphRole[];
  baselineRss: number;
  sessions: Array<{ role: GraphRole; ms: number; rssAfter: number }>;
  loadMs: number;
  rssAfterLoad: number;
  peakRssAfterLoad: number;
  unetStep?: { ms: number; dims: number[]; finite: boolean; inputType: string; outputMeanAbs: number };
  peakRss: number;
}

// ---------------------------------------------------------------------------------------------- children

async function childBuild(checkpoint: string, outDir: string, dtype: Dtype): Promise<void> {
  const t0 = performance.now();
  const r = await buildModel({
    checkpoint,
    outDir,
    dtype,
    target: 'cpu',
    modelVariant: 'svd-xt',
    log: (m) => process.stderr.write(`  ${m}\n`),
  });
  const buildMs = performance.now() - t0;
  const graphs = {} as BuildReport['graphs'];
  for (const role of GRAPH_ROLES) {
    const g = r.graphs[role];
    graphs[role] = {
      nodeCount: g.nodeCount,
      opCounts: g.opCounts,
      initializerCount: g.initializerCount,
      weightBytes: g.weightBytes,
      dataBytes: g.dataBytes,
      unused: g.unusedWeights.length,
    };
  }
  reportToParent({ buildMs, peakRss: peakRss(), graphs } satisfies BuildReport);
}

async function childLoad(
  modelDir: string,
  roles: GraphRole[],
  level: OptLevel,
  step: { latent: number; frames: number },
): Promise<void> {
  const baselineRss = process.memoryUsage().rss;
  const model = readModelDirectory(modelDir);
  const host = new InProcessOrtHost();
  const sessions: LoadReport['sessions'] = [];
  const runners = {} as Record<GraphRole, ModelRunner>;
  const t0 = performance.now();
  for (const role of roles) {
    const t = performance.now();
    const session = await host.createSession({
      path: model.paths[role],
      executionProviders: ['cpu'],
      graphOptimizationLevel: level,
    });
    sessions.push({ role, ms: performance.now() - t, rssAfter: process.memoryUsage().rss });
    runners[role] = new ModelRunner(role, session);
    process.stderr.write(`  ${role}: ${duration(sessions.at(-1)!.ms)}, RSS ${bytes(process.memoryUsage().rss)}\n`);
  }
  const report: LoadReport = {
    level,
    roles,
    baselineRss,
    sessions,
    loadMs: performance.now() - t0,
    rssAfterLoad: process.memoryUsage().rss,
    peakRssAfterLoad: peakRss(),
    peakRss: 0,
  };
  if (runners.unet) {
    // one CFG step (default: 64×64 pixels = latent 8×8, 2 frames), batch 2 (uncond, cond)
    const [B, F, C, h, w] = [2, step.frames, 8, step.latent, step.latent];
    const unet = runners.unet;
    const sample = Float32Array.from({ length: B * F * C * h * w }, (_, i) => Math.sin(i * 0.37));
    const context = Float32Array.from({ length: B * 1024 }, (_, i) => (i < 1024 ? 0 : Math.cos(i * 0.11)));
    const feeds = {
      sample: unet.tensor('sample', sample, [B, F, C, h, w]),
      timestep: unet.tensor('timestep', Float32Array.of(0.25 * Math.log(700)), []),
      encoder_hidden_states: unet.tensor('encoder_hidden_states', context, [B, 1, 1024]),
      added_time_ids: unet.tensor('added_time_ids', Float32Array.of(6, 127, 0.02, 6, 127, 0.02), [B, 3]),
    };
    const t = performance.now();
    const out = await unet.run(feeds);
    const ms = performance.now() - t;
    report.unetStep = {
      ms,
      dims: out.dims,
      finite: out.data.every(Number.isFinite),
      inputType: unet.inputType('sample'),
      outputMeanAbs: out.data.reduce((a, v) => a + Math.abs(v), 0) / out.data.length,
    };
  }
  report.peakRss = peakRss();
  reportToParent(report);
}

// ---------------------------------------------------------------------------------------------- parent

function ensureCheckpoint(
  dir: string,
  seed: number,
): { path: string; bytes: number; params: number; writtenMs?: number } {
  const configs = readCheckpointConfigs(CONFIGS);
  const lists = checkpointTensorLists(configs);
  const params = parameterCount(lists.unet) + parameterCount(lists.vae) + parameterCount(lists.imageEncoder);
  const path = join(dir, 'checkpoint');
  const files = [
    'unet/diffusion_pytorch_model.fp16.safetensors',
    'vae/diffusion_pytorch_model.fp16.safetensors',
    'image_encoder/model.fp16.safetensors',
  ].map((f) => join(path, f));
  // the directory is renamed into place only when complete, so its existence means a finished checkpoint
  if (files.every((f) => existsSync(f))) {
    const size = files.reduce((a, f) => a + statSync(f).size, 0);
    if (size >= params * 2) {
      console.log(`checkpoint: reusing ${path} (${bytes(size)})`);
      return { path, bytes: size, params };
    }
  }
  const needed = params * 2 + 64 * MiB;
  const free = freeDiskBytes(dir);
  if (free < needed + GiB) {
    console.error(
      `refusing to write the benchmark checkpoint: ${dir} has ${bytes(free)} free, it needs ${bytes(needed)} plus 1 GiB of headroom (use --dir elsewhere)`,
    );
    process.exit(1);
  }
  console.log(
    `checkpoint: writing random F16 SVD-XT (${(params / 1e9).toFixed(3)} G parameters, ${bytes(params * 2)}) to ${path} — ${bytes(free)} free`,
  );
  const t0 = performance.now();
  let shown = -1;
  const modelIndex = JSON.parse(readFileSync(join(CONFIGS, 'model_index.json'), 'utf8'));
  const r = writeRandomCheckpointDirStreaming(path, configs, {
    seed,
    dtype: 'F16',
    modelIndex,
    onProgress: (p) => {
      const pct = Math.floor((p.bytes / p.totalBytes) * 10);
      if (pct !== shown) {
        shown = pct;
        process.stdout.write(`  ${p.file.split('/').slice(-2).join('/')}: ${pct * 10}%\n`);
      }
    },
  });
  const writtenMs = performance.now() - t0;
  console.log(`checkpoint: written in ${duration(writtenMs)} (${bytes(r.bytes)}); writer peak RSS ${bytes(peakRss())}`);
  return { path, bytes: r.bytes, params, writtenMs };
}

/** The session loads to measure: dtype:level[:split] (split = each graph in its own process). */
const DEFAULT_LOADS = 'float16:all:split,float16:basic,float16:disabled,float32:basic,float32:all:split';
const LOAD_ORDER: GraphRole[] = ['imageEncoder', 'vaeEncoder', 'vaeDecoder', 'unet'];

interface LoadPlan {
  dtype: Dtype;
  level: OptLevel;
  split: boolean;
}

function parsePlan(spec: string): LoadPlan {
  const [dtype, level, split] = spec.split(':');
  if (
    (dtype !== 'float16' && dtype !== 'float32') ||
    !['all', 'extended', 'basic', 'disabled'].includes(level) ||
    (split !== undefined && split !== 'split')
  ) {
    console.error(
      `--loads: "${spec}" is not dtype:level[:split] (dtype float16|float32, level all|extended|basic|disabled)`,
    );
    process.exit(2);
  }
  return { dtype, level: level as OptLevel, split: split === 'split' };
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}×`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string', default: '/tmp/svd-bench' },
      seed: { type: 'string', default: '20261121' },
      loads: { type: 'string', default: DEFAULT_LOADS },
      child: { type: 'string' },
      checkpoint: { type: 'string' },
      out: { type: 'string' },
      dtype: { type: 'string' },
      model: { type: 'string' },
      roles: { type: 'string', default: LOAD_ORDER.join(',') },
      latent: { type: 'string', default: '8' },
      frames: { type: 'string', default: '2' },
      graphs: { type: 'string', default: 'imageEncoder,vaeEncoder,vaeDecoder,unet' },
      level: { type: 'string', default: 'all' },
      'cap-gib': { type: 'string', default: '12' },
    },
  });
  if (values.child === 'build') return childBuild(values.checkpoint!, values.out!, values.dtype as Dtype);
  if (values.child === 'load')
    return childLoad(values.model!, values.graphs!.split(',') as GraphRole[], values.level as OptLevel, {
      latent: Number(values.latent),
      frames: Number(values.frames),
    });

  const dir = resolve(values.dir!);
  const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version };
  const ckpt = ensureCheckpoint(dir, Number(values.seed));
  results.checkpoint = ckpt;

  const config = parseUnetConfig(readCheckpointConfigs(CONFIGS).unet);
  const builds: Partial<Record<Dtype, BuildReport>> = {};
  for (const dtype of ['float16', 'float32'] as Dtype[]) {
    const out = join(dir, `model-${dtype}`);
    console.log(`\nbuild ${dtype} → ${out}`);
    const run = await runChild<BuildReport>(
      SCRIPT,
      ['--child', 'build', '--checkpoint', ckpt.path, '--out', out, '--dtype', dtype],
      { echoStderr: true },
    );
    if (!run.result) {
      console.error(`  build failed (exit ${run.exitCode}):\n${run.stderrTail}`);
      process.exit(1);
    }
    const b = (builds[dtype] = run.result);
    const weightBytes = GRAPH_ROLES.reduce((a, r) => a + b.graphs[r].weightBytes, 0);
    const nodes = GRAPH_ROLES.map((r) => `${r} ${b.graphs[r].nodeCount}`).join(', ');
    console.log(
      `  buildModel: ${duration(b.buildMs)} (child wall ${duration(run.wallMs)}), peak RSS ${bytes(b.peakRss)} — goals ≤ 10 s, ≤ 1 GiB: ${b.buildMs <= 10_000 && b.peakRss <= GiB ? 'met' : 'NOT met'}`,
    );
    console.log(
      `  nodes: ${nodes}; referenced weights ${bytes(weightBytes)}; side data ${bytes(GRAPH_ROLES.reduce((a, r) => a + b.graphs[r].dataBytes, 0))}`,
    );
    console.log(`  unet ops: ${JSON.stringify(b.graphs.unet.opCounts)}`);
    results[`build_${dtype}`] = { ...b, childWallMs: run.wallMs, weightBytes };
    const counts = unetNodeCounts(config, { dtype, target: 'cpu' });
    console.log(
      `  unetNodeCounts (${dtype}, cpu): shortcut ${counts.shortcut}, literal cross-attention ${counts.literal}`,
    );
    results[`unetNodeCounts_${dtype}`] = counts;
  }

  const plans = values.loads!.split(',').map(parsePlan);
  for (const plan of plans) {
    const b = builds[plan.dtype]!;
    const label = `${plan.dtype}, graphOptimizationLevel '${plan.level}'${plan.split ? ', one process per graph' : ''}`;
    const available = memAvailableBytes();
    const cap = Math.min(Number(values['cap-gib']) * GiB, available - 3 * GiB);
    console.log(
      `\nload sessions (CPU EP; ${label}): memory available ${bytes(available)}, RSS cap per process ${bytes(cap)}`,
    );
    const order = LOAD_ORDER.filter((r) => values.roles!.split(',').includes(r));
    const groups: GraphRole[][] = plan.split ? order.map((r) => [r]) : [order];
    const reports: LoadReport[] = [];
    const failures: string[] = [];
    for (const roles of groups) {
      const args = [
        '--child',
        'load',
        '--model',
        join(dir, `model-${plan.dtype}`),
        '--graphs',
        roles.join(','),
        '--level',
        plan.level,
        '--latent',
        values.latent!,
        '--frames',
        values.frames!,
      ];
      const run = await runChild<LoadReport>(SCRIPT, args, { rssCapBytes: cap, echoStderr: true });
      if (run.result) {
        reports.push(run.result);
        continue;
      }
      const why = run.killedForMemory
        ? `killed at the RSS cap (peak ${bytes(run.polledPeakRss)} > ${bytes(cap)})`
        : `exit ${run.exitCode}: ${run.stderrTail.trim().split('\n').slice(-3).join(' | ')}`;
      failures.push(`${roles.join('+')}: ${why}`);
      console.log(`  FAILED ${roles.join('+')}: ${why}`);
    }
    const loaded = reports.flatMap((r) => r.roles);
    const weightBytes = loaded.reduce((a, r) => a + b.graphs[r].weightBytes, 0);
    const baseline = reports.length ? Math.min(...reports.map((r) => r.baselineRss)) : 0;
    // one process holding all of them would need its baseline once plus what each graph added
    const peak = baseline + reports.reduce((a, r) => a + r.peakRssAfterLoad - r.baselineRss, 0);
    const loadMs = reports.reduce((a, r) => a + r.loadMs, 0);
    const sessions = reports.flatMap((r) => r.sessions);
    const step = reports.find((r) => r.unetStep)?.unetStep;
    const entry: Record<string, unknown> = {
      ...plan,
      failures,
      loaded,
      weightBytes,
      baseline,
      peakRss: peak,
      loadMs,
      sessions,
      unetStep: step,
      reports,
    };
    results[`load_${plan.dtype}_${plan.level}${plan.split ? '_split' : ''}`] = entry;
    if (!reports.length) continue;
    console.log(
      `  sessions created in ${duration(loadMs)}: ${sessions.map((s) => `${s.role} ${duration(s.ms)}`).join(', ')}`,
    );
    console.log(
      `  peak RSS ${plan.split ? '(estimated for one process: baseline + Σ per-graph growth) ' : ''}${bytes(peak)} for ${bytes(weightBytes)} of stored weights (${loaded.join(', ')}) = ${ratio(peak, weightBytes)} ` +
        `(goal ≤ 1.2×: ${failures.length === 0 && peak <= 1.2 * weightBytes ? 'met' : 'NOT met'}); baseline ${bytes(baseline)}`,
    );
    for (const r of reports) {
      r.sessions.forEach((s, i) => {
        // one graph per process: its peak; several: what its session creation added to the RSS
        const growth =
          r.sessions.length === 1
            ? r.peakRssAfterLoad - r.baselineRss
            : s.rssAfter - (i === 0 ? r.baselineRss : r.sessions[i - 1].rssAfter);
        console.log(
          `    ${s.role}: ${duration(s.ms)}, RSS +${bytes(growth)} for ${bytes(b.graphs[s.role].weightBytes)} stored (${ratio(growth, b.graphs[s.role].weightBytes)})`,
        );
      });
    }
    if (step) {
      const stepReport = reports.find((r) => r.unetStep)!;
      console.log(
        `  UNet step (latent ${step.dims[3]}×${step.dims[4]}, ${step.dims[1]} frames, batch ${step.dims[0]}, ${step.inputType} in): ${duration(step.ms)}, output [${step.dims.join(',')}] ` +
          `finite=${step.finite} mean|v|=${step.outputMeanAbs.toFixed(4)}; peak RSS of that process after the step ${bytes(stepReport.peakRss)}`,
      );
    }
  }

  const name =
    values.latent === '8' && values.frames === '2' && values.roles === LOAD_ORDER.join(',')
      ? 'bench-build.json'
      : `bench-build-latent${values.latent}-frames${values.frames}.json`;
  writeFileSync(join(dir, name), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nresults: ${join(dir, name)}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exit(1);
});
