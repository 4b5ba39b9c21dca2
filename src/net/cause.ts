/**
 * Why a connection failed, in one word where possible: fetch (undici) wraps the system error in `cause`,
 * node:http reports it directly. `ECONNREFUSED`, `ENOTFOUND`, ... else the error's message.
 */
export function networkCause(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | undefined;
  const pick = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  return pick(e?.cause?.code) ?? pick(e?.code) ?? pick(e?.cause?.message) ?? pick(e?.message) ?? String(err);
}
