/**
 * The error shape OpenAI-style APIs answer with, `{error: {message, type, param, code}}` (the bodies
 * themselves are in src/backends/openai/wire.ts).
 */
import { sendJson } from '../http.js';
import type { ErrorWriter } from '../router.js';

const TYPES: Record<number, string> = {
  401: 'invalid_request_error',
  404: 'invalid_request_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
  499: 'invalid_request_error',
};
const CODES: Record<number, string> = { 401: 'invalid_api_key', 429: 'rate_limit_exceeded', 413: 'request_too_large' };

export const openaiError: ErrorWriter = (ctx, err) => {
  const type = TYPES[err.status] ?? (err.status >= 500 ? 'server_error' : 'invalid_request_error');
  sendJson(
    ctx.res,
    err.status,
    {
      error: { message: err.message, type, param: err.issues[0]?.field ?? null, code: CODES[err.status] ?? err.code },
    },
    err.headers,
  );
};
