/**
 * kill -9 during a write (audit item 9): the dead process's hidden partial stays beside the target; the next
 * write into that directory removes it, and leaves the partials of live processes alone.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomically, writeAll } from '../src/io/atomicFile.js';
import { partialPathFor } from '../src/io/partial.js';
import { writeVideo } from '../src/video/write.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'svd-partial-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The pid of a process that has exited (what kill -9 leaves behind). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function leftovers(): { dead: string; live: string } {
  const dead = `.video.mp4.partial-${deadPid()}-0badf00d`;
  const live = `.other.mp4.partial-${process.pid}-12345678`;
  writeFileSync(join(dir, dead), 'half an mp4');
  mkdirSync(join(dir, `.frames.partial-${deadPid()}-0000abcd`));
  writeFileSync(join(dir, live), 'still being written');
  return { dead, live };
}

describe('stale partials', () => {
  it('the video writer sweeps those of dead processes and keeps live ones', async () => {
    const { live } = leftovers();
    const frame = new Uint8Array(4 * 4 * 3).fill(200);
    await writeVideo([frame], { width: 4, height: 4, fps: 7, format: 'png', output: join(dir, 'frames') });
    expect(readdirSync(dir).sort()).toEqual([live, 'frames'].sort());
  });

  it('the atomic file writer does too, and names its own partial the same way', () => {
    const { live } = leftovers();
    writeFileAtomically(join(dir, 'model.safetensors'), (fd) => writeAll(fd, new Uint8Array([1, 2, 3])));
    expect(readdirSync(dir).sort()).toEqual([live, 'model.safetensors'].sort());
    expect(partialPathFor(join(dir, 'x.bin'))).toMatch(new RegExp(`/\\.x\\.bin\\.partial-${process.pid}-[0-9a-f]{8}$`));
  });
});
