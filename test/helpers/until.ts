/**
 * Waits for a condition, not for time: polls `probe` until it returns something other than undefined and
 * returns that. `ms` only bounds a wait that would otherwise never end (a hung job); it is generous because
 * CI runs the whole suite on a loaded 2-core machine.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 120_000,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
}
