import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startDeadline } from '../src/net/deadline.js';

const CHILD = join(import.meta.dirname, 'children', 'deadlineUnderGc.ts');

describe('deadlines', () => {
  it('fire during an endless download while the garbage collector runs (Node 20 collected AbortSignal.timeout in any)', async () => {
    const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['--expose-gc', '--import', 'tsx', CHILD],
        { timeout: 30_000 },
        (err, stdout) => resolve({ stdout, code: err ? ((err as { code?: number }).code ?? null) : 0 }),
      );
      child.stderr?.pipe(process.stderr);
    });
    expect(code).toBe(0);
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { provider: string; image: string };
    expect(result.provider).toMatch(/^ProviderError:deadline_exceeded:/);
    expect(result.image).toMatch(/^ImageLoadError:image_load_failed:.*download timed out after 1500 ms/);
  });

  it("joins the caller's signal and says which one fired", () => {
    const caller = new AbortController();
    const d = startDeadline(60_000, caller.signal);
    caller.abort();
    expect(d.signal.aborted).toBe(true);
    expect(d.expired).toBe(false);
    d.dispose();
  });
});
