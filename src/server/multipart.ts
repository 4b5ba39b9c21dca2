/**
 * Form bodies (multipart/form-data and urlencoded) → a plain object. The parsing itself is undici's
 * `Request.formData()`, built into Node 20; files become their bytes. Bracketed names nest one level,
 * as OpenAI's SDK and ours send them: `input_reference[image_url]=…` → `{ input_reference: { image_url } }`.
 */
import { HttpError } from './http.js';

export function isFormContentType(contentType: string | undefined): boolean {
  return /^(multipart\/form-data|application\/x-www-form-urlencoded)\b/i.test(contentType ?? '');
}

export async function parseForm(bodyBytes: Buffer, contentType: string): Promise<Record<string, unknown>> {
  let form: FormData;
  try {
    form = await new Request('http://form.invalid/', { method: 'POST', headers: { 'content-type': contentType }, body: bodyBytes }).formData();
  } catch {
    throw new HttpError(400, 'invalid_form', 'request body is not a valid multipart/form-data or urlencoded form');
  }
  const out: Record<string, unknown> = {};
  for (const [name, value] of form.entries()) {
    const v: unknown = typeof value === 'string' ? value : new Uint8Array(await value.arrayBuffer());
    const m = /^([^[\]]+)\[([^[\]]+)\]$/.exec(name);
    if (m) {
      const inner = (out[m[1]] !== null && typeof out[m[1]] === 'object' && !(out[m[1]] instanceof Uint8Array) ? out[m[1]] : {}) as Record<string, unknown>;
      inner[m[2]] = v;
      out[m[1]] = inner;
    } else {
      out[name] = v;
    }
  }
  return out;
}
