/**
 * Typed errors. Each carries the field or file at fault and what is allowed, so the CLI and the
 * HTTP server can print one clear line per problem instead of a stack trace.
 */

/** Base class: `code` is stable and machine-readable; `message` is for people. */
export class SvdError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

export interface FieldIssue {
  /** Dotted path of the field, e.g. `steps` or `image`. */
  field: string;
  /** The value that was given (shortened when long). */
  value?: unknown;
  /** What is wrong and what is allowed. */
  message: string;
}

/**
 * A generation request (or CLI flags, or an HTTP body) that breaks the schema. Values and field names are
 * bounded on the way in (boundedValue, boundedName): issues are echoed to clients, and a value nested
 * thousands of levels deep must not overflow the stack of whoever serialises it.
 */
export class InvalidRequestError extends SvdError {
  readonly issues: FieldIssue[];
  constructor(issues: FieldIssue[]) {
    const bounded = issues.map((i) => ({
      ...i,
      field: boundedName(i.field),
      ...(i.value === undefined ? {} : { value: boundedValue(i.value) }),
    }));
    super('invalid_request', bounded.map(formatIssue).join('\n'));
    this.issues = bounded;
  }
}

/**
 * A request that would not fit in the memory available (the estimate of src/models/memory.ts), refused before
 * anything loads. The issues name width/height, frames and decodeChunkSize with the largest values that fit.
 * HTTP: 422 (the request is well-formed but too big for this server). `--force` (CLI) skips the check.
 */
export class MemoryBudgetError extends InvalidRequestError {
  constructor(issues: FieldIssue[]) {
    super(issues);
    (this as { code: string }).code = 'exceeds_memory_budget';
  }
}

/** A field name as echoed: at most 80 characters (a client may send a key of any length). */
export function boundedName(name: string): string {
  if (name.length <= 80) return name;
  // Never cut a surrogate pair in two (a lone surrogate is not valid text in JSON or a header).
  const cut = /[\ud800-\udbff]/.test(name[76]) ? 76 : 77;
  return `${name.slice(0, cut)}...`;
}

/**
 * A copy of `value` that is cheap and safe to serialise: at most 3 levels deep, 8 entries per array or
 * object, 60 characters per string; bytes become `<n bytes>`, what JSON cannot hold becomes a string.
 * Iteration is bounded too, so a 10,000-deep or 10-million-entry value costs nothing here.
 */
export function boundedValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.length > 60 ? `${value.slice(0, 57)}...` : value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'boolean' || value === null) return value;
  if (typeof value === 'bigint') return `${value}n`.slice(0, 60);
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (typeof value !== 'object') return typeof value;
  if (depth >= 3) return Array.isArray(value) ? '[...]' : '{...}';
  if (Array.isArray(value)) {
    const out = value.slice(0, 8).map((v) => boundedValue(v, depth + 1));
    if (value.length > 8) out.push(`... ${value.length - 8} more`);
    return out;
  }
  const out: Record<string, unknown> = Object.create(null);
  let n = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (n++ === 8) {
      out['...'] = 'more keys';
      break;
    }
    out[boundedName(key)] = boundedValue((value as Record<string, unknown>)[key], depth + 1);
  }
  return out;
}

export function formatIssue(issue: FieldIssue): string {
  const shown = issue.value === undefined ? '' : ` (got ${describeValue(issue.value)})`;
  return `${issue.field}: ${issue.message}${shown}`;
}

/** Short, safe rendering of a user value for error messages (never dumps a whole base64 image). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    const s = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(s);
  }
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return typeof value;
  const s = JSON.stringify(boundedValue(value)) ?? typeof value;
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** An input image that cannot be read or decoded. */
export class ImageLoadError extends SvdError {
  /** What is wrong, without the source: "cannot be decoded as PNG (...)". */
  readonly detail: string;
  constructor(
    readonly source: string,
    message: string,
  ) {
    super('image_load_failed', `image ${source}: ${message}`);
    this.detail = message;
  }
}

/** A model directory or file that is missing. */
export class ModelNotFoundError extends SvdError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super('model_not_found', `${path}: ${message}`);
  }
}

/** A model file that exists but does not match the contract (wrong inputs, shapes, dtypes, manifest fields). */
export class ModelFormatError extends SvdError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super('model_format', `${path}: ${message}`);
  }
}

/** A checkpoint (diffusers safetensors) that the graph builder cannot use. */
export class CheckpointError extends SvdError {
  constructor(
    readonly path: string,
    message: string,
    readonly problems: string[] = [],
  ) {
    super(
      'checkpoint_invalid',
      problems.length ? `${path}: ${message}\n  ${problems.join('\n  ')}` : `${path}: ${message}`,
    );
  }
}

/** An execution provider that was asked for and cannot be used. */
export class ExecutionProviderError extends SvdError {
  constructor(
    readonly device: string,
    message: string,
  ) {
    super('execution_provider_unavailable', message);
  }
}

/** ffmpeg is missing or failed. */
export class FfmpegError extends SvdError {
  constructor(message: string) {
    super('ffmpeg_failed', message);
  }
}

/** The caller aborted (AbortSignal); no output file was left behind. */
export class AbortError extends SvdError {
  constructor(message = 'generation aborted') {
    super('aborted', message);
  }
}

/** Throws AbortError when the signal is aborted; call between steps. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError();
}

/**
 * A Hugging Face Hub download or cache lookup that failed: a gated repo without an accepted licence,
 * a missing repo/file, an unreachable endpoint, a file missing in offline mode, or a corrupt download.
 * The message names the repo and file and says what to do; it never contains the token.
 */
export class HubError extends SvdError {
  constructor(
    code:
      | 'hub_auth_required'
      | 'hub_not_found'
      | 'hub_unreachable'
      | 'hub_offline_missing'
      | 'hub_integrity'
      | 'hub_download_failed',
    readonly repo: string,
    message: string,
    readonly status?: number,
  ) {
    super(code, message);
  }
}

/**
 * A hosted provider (Segmind, fal, OpenAI-style) refused or failed a job. `status` is the HTTP status when
 * there was one; `providerMessage` is the provider's own words (API keys redacted); `retryable` says whether
 * trying again later can help (rate limits, gateway errors, timeouts).
 */
export class ProviderError extends SvdError {
  readonly provider: string;
  readonly status?: number;
  readonly providerMessage: string;
  readonly retryable: boolean;
  /** Field-level complaints the provider returned (fal/pydantic 422 `detail[]`), when any. */
  readonly details: FieldIssue[];
  constructor(init: {
    provider: string;
    status?: number;
    providerMessage: string;
    retryable: boolean;
    code?: string;
    message?: string;
    details?: FieldIssue[];
  }) {
    const status = init.status === undefined ? '' : ` (HTTP ${init.status})`;
    super(init.code ?? 'provider_error', init.message ?? `${init.provider}${status}: ${init.providerMessage}`);
    this.provider = init.provider;
    this.status = init.status;
    this.providerMessage = init.providerMessage;
    this.retryable = init.retryable;
    this.details = init.details ?? [];
  }
}
