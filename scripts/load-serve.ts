/**
 * Load check for `svd serve`: starts a server on loopback, submits N jobs at once through the fal queue,
 * OpenAI and our own API in turn (one shared queue), waits for all of them, and reports whether every job
 * finished, in the order the server received them, with a valid video each and nothing lost.
 *
 *   npx tsx scripts/load-serve.ts [--jobs 8] [--steps 2] [--timeout 300] [--model <ref>]
 *
 * Bounded: at most 64 jobs, a wall-clock limit, loopback only. Exits 1 when anything is missing or out of order.
 */
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { startServer } from '../src/server/index.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '8' },
    steps: { type: 'string', default: '2' },
    timeout: { type: 'string', default: '300' },
    model: { type: 'string' },
  },
});
const jobs = Math.min(64, Math.max(1, Number(values.jobs) || 8));
const steps = Math.min(100, Math.max(1, Number(values.steps) || 2));
const deadline = Date.now() + Math.max(10, Number(values.timeout) || 300) * 1000;

interface JobView {
  id: string;
  status: string;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  video: { url: string; size: number } | null;
  error: { message: string } | null;
}

async function main(): Promise<number> {
  const png = await sharp({ create: { width: 128, height: 64, channels: 3, background: { r: 40, g: 120, b: 200 } } })
    .png()
    .toBuffer();
  const dataUri = `data:image/png;base64,${png.toString('base64')}`;
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    model: values.model,
    queueSize: jobs,
    defaults: { steps },
  });
  const t0 = Date.now();
  try {
    const json = { 'content-type': 'application/json' };
    const submitters = [
      async () =>
        (
          (await (
            await fetch(`${server.url}/fal-ai/svd`, {
              method: 'POST',
              headers: json,
              body: JSON.stringify({ image_url: dataUri }),
            })
          ).json()) as { request_id: string }
        ).request_id,
      async () => {
        const form = new FormData();
        form.append('prompt', 'load test');
        form.append('input_reference', new Blob([png], { type: 'image/png' }), 'in.png');
        const v = (await (await fetch(`${server.url}/v1/videos`, { method: 'POST', body: form })).json()) as {
          id: string;
        };
        return v.id.replace(/^video_(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
      },
      async () =>
        (
          (await (
            await fetch(`${server.url}/api/jobs`, {
              method: 'POST',
              headers: json,
              body: JSON.stringify({ image: dataUri }),
            })
          ).json()) as { id: string }
        ).id,
    ];
    const ids = await Promise.all(Array.from({ length: jobs }, (_, i) => submitters[i % submitters.length]()));
    process.stderr.write(`submitted ${ids.length} jobs in ${Date.now() - t0} ms\n`);

    let views: JobView[] = [];
    for (;;) {
      views = await Promise.all(
        ids.map(async (id) => (await (await fetch(`${server.url}/api/jobs/${id}`)).json()) as JobView),
      );
      const done = views.filter((v) => !['queued', 'running'].includes(v.status)).length;
      process.stderr.write(`\r${done}/${jobs} finished`);
      if (done === jobs) break;
      if (Date.now() > deadline) throw new Error(`timed out with ${jobs - done} jobs unfinished`);
      await new Promise((r) => setTimeout(r, 250));
    }
    process.stderr.write('\n');

    const completed = views.filter((v) => v.status === 'completed');
    const byArrival = [...views].sort((a, b) => a.createdAt - b.createdAt);
    const fifo = byArrival.every((v, i) => i === 0 || (v.startedAt ?? 0) >= (byArrival[i - 1].completedAt ?? Infinity));
    let videosOk = 0;
    for (const v of completed) {
      const bytes = new Uint8Array(await (await fetch(v.video!.url)).arrayBuffer());
      if (bytes.length === v.video!.size && Buffer.from(bytes.subarray(4, 8)).toString('latin1') === 'ftyp') videosOk++;
    }
    const runMs = completed.map((v) => v.completedAt! - v.startedAt!);
    const summary = {
      jobs,
      steps,
      completed: completed.length,
      failed: views.filter((v) => v.status !== 'completed').map((v) => v.error?.message),
      distinctIds: new Set(ids).size,
      fifo,
      videosOk,
      wallMs: Date.now() - t0,
      meanJobMs: Math.round(runMs.reduce((a, b) => a + b, 0) / Math.max(1, runMs.length)),
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    const ok = summary.completed === jobs && summary.distinctIds === jobs && fifo && videosOk === jobs;
    process.stdout.write(ok ? 'load-serve: OK: every job finished, in order, nothing lost\n' : 'load-serve: FAILED\n');
    return ok ? 0 : 1;
  } finally {
    await server.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`load-serve: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
