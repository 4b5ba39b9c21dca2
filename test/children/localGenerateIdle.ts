/**
 * A local generate with the tiny model on the CPU, then the process stays up with its sessions open for
 * SVD_IDLE_MS (onnxruntime's telemetry uploader wakes some seconds after the first session). Run under strace
 * by test/no-network.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../../src/backends/local.js';

const dir = mkdtempSync(join(tmpdir(), 'svd-no-net-'));
const backend = new LocalBackend({ device: 'cpu' });
try {
  const image = join(import.meta.dirname, '..', 'fixtures', 'reference', 'input_64x128.png');
  await backend.generate({ image, steps: 1, frames: 2, width: 64, height: 64, output: join(dir, 'v.mp4'), seed: 1 });
  await new Promise((r) => setTimeout(r, Number(process.env.SVD_IDLE_MS ?? 15_000)));
  process.stdout.write('generated\n');
} finally {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
}
