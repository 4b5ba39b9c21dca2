/**
 * Pipeline overhead benchmark: how much of a generation is spent outside onnxruntime's `run`
 * (preprocessing, tensor conversion, CFG, Euler steps, worker messaging, frame conversion), measured on
 * the embedded tiny model where the sessions themselves are cheap, so the overhead is what shows.
 *
 *   npx tsx scripts/bench-pipeline.ts [--runs 5] [--steps 25] [--frames 14]
 *
 * The tiny checkpoint (models/tiny-svd) is built into a temporary directory (fp32, CPU). Each mode runs one
 * warm-up generation and then `--runs` timed ones with `skipVideo`: once with sessions in the worker
 * thread (the default) and once in-process (`inWorker: false`). Session run time is measured by an OrtHost
 * wrapper around every `run` call, on the calling side: for the worker that includes the messaging.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildModel } from '../src/models/build.js';
import { embeddedTinyCheckpoint } from '../src/models/paths.js';
import { createPipeline } from '../src/pipeline/pipeline.js';
import { InProcessOrtHost, WorkerOrtHost, type HostedSession, type OrtHost, type SessionSpec } from '../src/runtime/ortHost.js';

interface RunRecord {
  graph: string;
  ms: number;
}

/** Wraps an OrtHost and records the duration of every `run` call, per graph file. */
class TimingOrtHost implements OrtHost {
  runs: RunRecord[] = [];
  constructor(private readonly inner: OrtHost) {}

  async createSession(spec: SessionSpec): Promise<HostedSession> {
    const s = await this.inner.createSession(spec);
    const graph = basename(spec.path, '.onnx');
    return {
      path: s.path,
      inputs: s.inputs,
      outputs: s.outputs,
      run: async (feeds) => {
        const t = performance.now();
        const out = await s.run(feeds);
        this.runs.push({ graph, ms: performance.now() - t });
        return out;
      },
      release: () => s.release(),
    };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

interface GenerationMeasure {
  total: number;
  runTotal: number;
  runByGraph: Record<string, number>;
  steps: number;
  /** Per step: pipeline step time − UNet run time. */
  stepOverhead: number[];
  stepTime: number[];
  preprocess: number;
  encodeOverhead: number;
  decodeOverhead: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function measureMode(modelDir: string, inWorker: boolean, runs: number, request: Record<string, unknown>): Promise<GenerationMeasure[]> {
  const host = new TimingOrtHost(inWorker ? new WorkerOrtHost() : new InProcessOrtHost());
  const pipeline = await createPipeline({ modelDir, device: 'cpu', host, inWorker, log: () => {} });
  const out: GenerationMeasure[] = [];
  try {
    for (let i = 0; i <= runs; i++) {
      host.runs = [];
      const r = await pipeline.generate({ ...request, seed: 1000 + i } as never, { skipVideo: true });
      if (i === 0) continue; // warm-up: first-run allocations and JIT
      const byGraph: Record<string, number> = {};
      for (const x of host.runs) byGraph[x.graph] = (byGraph[x.graph] ?? 0) + x.ms;
      const unetRuns = host.runs.filter((x) => x.graph === 'unet').map((x) => x.ms);
      const t = r.timings;
      out.push({
        total: t.total,
        runTotal: host.runs.reduce((a, x) => a + x.ms, 0),
        runByGraph: byGraph,
        steps: r.stepTimings.length,
        stepTime: r.stepTimings,
        stepOverhead: r.stepTimings.map((s, k) => s - unetRuns[k]),
        preprocess: t.preprocess,
        encodeOverhead: t.encode - (byGraph.image_encoder ?? 0) - (byGraph.vae_encoder ?? 0),
        decodeOverhead: t.decode - (byGraph.vae_decoder ?? 0),
      });
    }
  } finally {
    await pipeline.close();
    await host.close();
  }
  return out;
}

function summarize(label: string, ms: GenerationMeasure[]): Record<string, number | string> {
  const total = mean(ms.map((m) => m.total));
  const run = mean(ms.map((m) => m.runTotal));
  const stepOverhead = mean(ms.flatMap((m) => m.stepOverhead));
  const stepTime = mean(ms.flatMap((m) => m.stepTime));
  const unetRun = mean(ms.map((m) => (m.runByGraph.unet ?? 0) / m.steps));
  const row = {
    mode: label,
    generations: ms.length,
    totalMs: total,
    sessionRunMs: run,
    overheadMs: total - run,
    overheadPct: (100 * (total - run)) / total,
    unetRunPerStepMs: unetRun,
    stepMs: stepTime,
    stepOverheadMs: stepOverhead,
    stepOverheadPct: (100 * stepOverhead) / stepTime,
    preprocessMs: mean(ms.map((m) => m.preprocess)),
    encodeOverheadMs: mean(ms.map((m) => m.encodeOverhead)),
    decodeOverheadMs: mean(ms.map((m) => m.decodeOverhead)),
  };
  const f = (x: number) => x.toFixed(2);
  console.log(`\n${label} (${ms.length} generations, ${ms[0].steps} steps each)`);
  console.log(`  total ${f(row.totalMs)} ms, inside session.run ${f(row.sessionRunMs)} ms → overhead ${f(row.overheadMs)} ms (${row.overheadPct.toFixed(1)}%)`);
  console.log(`  per step: ${f(row.stepMs)} ms, of which UNet run ${f(row.unetRunPerStepMs)} ms → overhead ${f(row.stepOverheadMs)} ms/step (${row.stepOverheadPct.toFixed(1)}%)`);
  console.log(`  outside the steps: preprocess ${f(row.preprocessMs)} ms, encode overhead ${f(row.encodeOverheadMs)} ms, decode overhead ${f(row.decodeOverheadMs)} ms`);
  return row;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      steps: { type: 'string', default: '25' },
      frames: { type: 'string', default: '14' },
      image: { type: 'string', default: resolve(fileURLToPath(new URL('../test/fixtures/reference/input_64x128.png', import.meta.url))) },
    },
  });
  const runs = Number(values.runs);
  const tmp = mkdtempSync(join(tmpdir(), 'svd-bench-pipeline-'));
  try {
    const modelDir = join(tmp, 'tiny');
    const built = await buildModel({ checkpoint: embeddedTinyCheckpoint(), outDir: modelDir, dtype: 'float32', target: 'cpu', modelVariant: 'tiny' });
    console.log(`tiny model built in ${built.ms.toFixed(0)} ms → ${modelDir}`);
    const request = { image: values.image, steps: Number(values.steps), frames: Number(values.frames), device: 'cpu' };
    console.log(`request: ${JSON.stringify(request)} (size: the model's default ${built.manifest.defaults.width}×${built.manifest.defaults.height})`);
    const rows = [
      summarize('worker thread (default)', await measureMode(modelDir, true, runs, request)),
      summarize('in-process (inWorker: false)', await measureMode(modelDir, false, runs, request)),
    ];
    const [w, p] = rows as Array<Record<string, number>>;
    console.log(`\nworker messaging cost ≈ ${(w.sessionRunMs - p.sessionRunMs).toFixed(2)} ms per generation (Σrun as seen by the caller, worker − in-process)`);
    console.log(`\nJSON ${JSON.stringify({ date: new Date().toISOString(), node: process.version, request, rows })}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exit(1);
});
