/**
 * Form bodies (multipart/form-data and urlencoded) → an object with a null prototype. The parsing itself
 * is undici's `Request.formData()`, built into Node 20; files become their bytes. Bracketed names nest one
 * level, as OpenAI's SDK and ours send them: `input_reference[image_url]=…` → `{ input_reference: { image_url } }`.
 * `__proto__`, `constructor` and `prototype` are refused as names at either level: `__proto__[model]=x`
 * once reached Object.prototype and broke every later request (prototype pollution).
 */
import { checkClientObject, HttpError } from './http.js';

export function isFormContentType(contentType: string | undefined): boolean {
  return /^(multipart\/form-data|application\/x-www-form-urlencoded)\b/i.test(contentType ?? '');
}

export async function parseForm(bodyBytes: Buffer, contentType: string): Promise<Record<string, unknown>> {
  let form: FormData;
  try {
    form = await new Request('http://form.invalid/', {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: bodyBytes,
    }).formData();
  } catch {
    throw new HttpError(400, 'invalid_form', 'request body is not a valid multipart/form-data or urlencoded form');
  }
  const out: Record<string, unknown> = Object.create(null);
  for (const [name, value] of form.entries()) {
    const v: unknown = typeof value === 'string' ? value : new Uint8Array(await value.arrayBuffer());
    const m = /^([^[\]]+)\[([^[\]]+)\]$/.exec(name);
    // Each name is checked before it is used as a key (checkClientObject refuses prototype keys).
    if (m) {
      checkClientObject({ [m[1]]: { [m[2]]: null } });
      const existing = Object.hasOwn(out, m[1]) ? out[m[1]] : undefined;
      const inner = (
        existing !== null && typeof existing === 'object' && !(existing instanceof Uint8Array)
          ? existing
          : Object.create(null)
      ) as Record<string, unknown>;
      inner[m[2]] = v;
      out[m[1]] = inner;
    } else {
      checkClientObject({ [name]: null });
      out[name] = v;
    }
  }
  return out;
}
