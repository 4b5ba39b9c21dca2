/** Checks that a secret appears nowhere in an error: message, stack, own fields, nested details. */
import { expect } from 'vitest';

export function expectNoSecret(err: unknown, secret: string): void {
  const e = err as Record<string, unknown> & Error;
  const texts = [String(e?.message), String(e?.stack), JSON.stringify(e), JSON.stringify(Object.entries(e ?? {}))];
  for (const t of texts) expect(t).not.toContain(secret);
}

/** Awaits a promise that must reject, returning the error. */
export async function rejectionOf(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}
