/**
 * Names for files being written (`.<name>.partial-<pid>-<hex>`, hidden, beside the target so the final
 * rename stays on one filesystem) and the sweep that removes those of dead processes: a process killed
 * with -9 mid-write cannot clean up, so the next writer into the same directory does it.
 */
import { readdirSync, rmSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

const PARTIAL = /^\..+\.partial-(\d+)-[0-9a-f]+$/;

/** A fresh partial path for `target`, in the same directory. */
export function partialPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Whether a process id is alive; EPERM means it exists but is not ours. */
function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The partials in `names` whose writer is gone. */
function stale(names: string[]): string[] {
  return names.filter((name) => {
    const m = PARTIAL.exec(name);
    return m !== null && !isAlive(Number(m[1]));
  });
}

/** Removes partials left in `dir` by processes that no longer run; never throws. */
export async function sweepStalePartials(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const gone = stale(names);
  await Promise.all(gone.map((name) => rm(join(dir, name), { recursive: true, force: true }).catch(() => {})));
  return gone;
}

/** Synchronous sweepStalePartials, for the synchronous writers. */
export function sweepStalePartialsSync(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const gone = stale(names);
  for (const name of gone) {
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
    } catch {
      /* another sweeper got there first */
    }
  }
  return gone;
}
