/**
 * Turning a provider's error response into a `ProviderError`: what the status means (the seeds' error tables),
 * the provider's own message from whichever body shape it uses, and redaction of API keys, because some
 * servers echo the key they were given ("invalid key sk-...").
 */
import { ProviderError, type FieldIssue } from '../errors.js';
import { isRetryableStatus } from '../net/retry.js';

/** Status → stable code and a plain-words meaning (Segmind's table, fal's and OpenAI's conventions). */
const STATUS_MEANING: Record<number, [code: string, meaning: string]> = {
  400: ['provider_bad_request', 'bad request: invalid parameters or request format'],
  401: ['provider_unauthorized', 'unauthorized: missing or invalid API key'],
  402: ['provider_insufficient_credits', 'payment required: not enough credits'],
  403: ['provider_forbidden', 'forbidden: the key lacks permission for this model'],
  404: ['provider_not_found', 'model or endpoint not found'],
  406: ['provider_insufficient_credits', 'not enough credits to process the request'],
  422: ['provider_invalid_request', 'the provider rejected some fields'],
  429: ['provider_rate_limited', 'rate limited: too many requests'],
  500: ['provider_server_error', 'internal server error'],
  502: ['provider_unavailable', 'bad gateway: service temporarily unavailable'],
  503: ['provider_unavailable', 'service unavailable'],
  504: ['provider_timeout', 'the provider timed out'],
};

/** Replaces every secret (and each half of fal's `id:secret` form) with `***`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  const parts = secrets.flatMap((s) => [s, ...s.split(':')]).filter((s) => s.length >= 6);
  // Longest first so a full key is replaced before its halves.
  for (const s of [...new Set(parts)].sort((a, b) => b.length - a.length)) out = out.split(s).join('***');
  return out;
}

/** The provider's words from an error body: Segmind `{error}`, fal `{detail}`, OpenAI `{error:{message}}`, or text. */
export function messageFromBody(body: string, contentType: string | null): { message: string; details: FieldIssue[] } {
  const trimmed = body.trim();
  if (contentType?.includes('json') || trimmed.startsWith('{')) {
    try {
      return messageFromJson(JSON.parse(trimmed));
    } catch {
      // Not JSON after all; fall through to text.
    }
  }
  const text = contentType?.includes('html')
    ? trimmed
        .replace(/<[^>]*>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim()
    : trimmed;
  return { message: shorten(text), details: [] };
}

function messageFromJson(json: unknown): { message: string; details: FieldIssue[] } {
  const o = (json ?? {}) as Record<string, unknown>;
  // pydantic-style 422: detail: [{loc, msg, type}]
  if (Array.isArray(o.detail)) {
    const details = o.detail.map((d: any) => ({
      field: Array.isArray(d?.loc) ? d.loc.filter((p: unknown) => p !== 'body').join('.') : '(request)',
      message: String(d?.msg ?? d?.message ?? 'invalid'),
    }));
    return { message: shorten(details.map((d) => `${d.field}: ${d.message}`).join('; ')), details };
  }
  const candidates = [o.error, o.detail, o.message, o.msg, o.ErrMsg];
  for (const c of candidates) {
    if (typeof c === 'string' && c) return { message: shorten(c), details: [] };
    if (c && typeof c === 'object' && typeof (c as any).message === 'string') {
      return { message: shorten((c as any).message), details: [] };
    }
  }
  return { message: shorten(JSON.stringify(json)), details: [] };
}

function shorten(s: string, max = 300): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

export interface HttpFailure {
  provider: string;
  /** What was being done, e.g. `POST /v1/svd`, for the message. */
  action: string;
  status: number;
  body: string;
  contentType: string | null;
  secrets: readonly string[];
}

/** A non-2xx response as a ProviderError: provider, status meaning, provider's message, retryability. */
export function providerErrorFromResponse(f: HttpFailure): ProviderError {
  const [code, meaning] = STATUS_MEANING[f.status] ?? [
    f.status >= 500 ? 'provider_server_error' : 'provider_error',
    `HTTP ${f.status}`,
  ];
  const parsed = messageFromBody(f.body, f.contentType);
  const providerMessage = redact(parsed.message || meaning, f.secrets);
  const details = parsed.details.map((d) => ({ ...d, message: redact(d.message, f.secrets) }));
  const message = `${f.provider} ${f.action}: HTTP ${f.status} ${meaning}${providerMessage && providerMessage !== meaning ? `: ${providerMessage}` : ''}`;
  return new ProviderError({
    provider: f.provider,
    status: f.status,
    providerMessage,
    retryable: isRetryableStatus(f.status),
    code,
    message: redact(message, f.secrets),
    details,
  });
}
