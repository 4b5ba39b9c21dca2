/**
 * fal's queue protocol (docs/providers.md §2.3): submit to `queue.fal.run/<model>`, poll `.../requests/<id>/status`
 * with logs, fetch `.../requests/<id>`, and `PUT .../requests/<id>/cancel` when the caller aborts or the
 * deadline passes. Status/result/cancel URLs use only owner/alias, never an endpoint sub-path.
 */
import type { ProgressEvent } from '../types.js';
import { ProviderError } from '../../errors.js';
import { badResponse, bestEffort, httpJson, sleep, type CallContext } from '../http.js';
import { redact } from '../providerErrors.js';
import { progressFromLog } from './logs.js';

export interface FalQueueCall {
  queueUrl: string;
  modelId: string;
  apiKey: string;
  input: Record<string, unknown>;
  pollIntervalMs: number;
  onProgress: (e: ProgressEvent) => void;
}

interface SubmitAnswer {
  request_id?: string;
  status_url?: string;
  response_url?: string;
  cancel_url?: string;
  queue_position?: number;
}

interface StatusAnswer {
  status?: string;
  queue_position?: number;
  logs?: { message?: string }[] | null;
  error?: string | null;
  error_type?: string | null;
}

export interface FalQueueOutcome {
  requestId: string;
  result: unknown;
  logs: number;
}

/** The queue URLs of one request. Submit's own URLs are used only when they point at the queue we called,
 * so a redirecting answer cannot send our key to another host. */
export function requestUrls(queueUrl: string, modelId: string, requestId: string, submit: SubmitAnswer) {
  const [owner, alias] = modelId.split('/');
  const root = `${queueUrl}/${owner}/${alias}/requests/${encodeURIComponent(requestId)}`;
  const sameOrigin = (u: string | undefined) => {
    try {
      return u !== undefined && new URL(u).origin === new URL(queueUrl).origin;
    } catch {
      return false;
    }
  };
  return {
    status: sameOrigin(submit.status_url) ? submit.status_url! : `${root}/status`,
    response: sameOrigin(submit.response_url) ? submit.response_url! : root,
    cancel: sameOrigin(submit.cancel_url) ? submit.cancel_url! : `${root}/cancel`,
  };
}

/** Runs one job through the queue and returns its output JSON; cancels it remotely when stopped. */
export async function runFalQueue(ctx: CallContext, call: FalQueueCall): Promise<FalQueueOutcome> {
  const headers = {
    authorization: `Key ${call.apiKey}`,
    'content-type': 'application/json',
    accept: 'application/json',
  };
  const submit = await httpJson<SubmitAnswer>(ctx, `${call.queueUrl}/${call.modelId}`, {
    method: 'POST',
    action: `submit ${call.modelId}`,
    headers,
    body: JSON.stringify(call.input),
  });
  if (!submit.request_id) throw badResponse(ctx, 'the queue answered without a request_id');
  const urls = requestUrls(call.queueUrl, call.modelId, submit.request_id, submit);
  let logsSeen = 0;
  try {
    for (;;) {
      const status = await httpJson<StatusAnswer>(ctx, `${urls.status}${urls.status.includes('?') ? '&' : '?'}logs=1`, {
        method: 'GET',
        action: 'status',
        headers,
      });
      const logs = status.logs ?? [];
      for (const log of logs.slice(logsSeen)) if (log?.message) call.onProgress(progressFromLog(log.message));
      logsSeen = Math.max(logsSeen, logs.length);
      if (status.status === 'IN_QUEUE') {
        call.onProgress({
          stage: 'queue',
          message: `in queue${status.queue_position === undefined ? '' : `, position ${status.queue_position}`}`,
        });
      } else if (status.status === 'COMPLETED') {
        if (status.error) throw jobFailed(ctx, `${status.error_type ? `${status.error_type}: ` : ''}${status.error}`);
        break;
      } else if (status.status !== 'IN_PROGRESS') {
        // FAILED / CANCELED appear in third-party schemas only (§2.3); anything unknown ends the job.
        throw jobFailed(
          ctx,
          `the job ended with status ${String(status.status)}${status.error ? `: ${status.error}` : ''}`,
        );
      }
      await sleep(ctx, call.pollIntervalMs);
    }
    const result = await httpJson(ctx, urls.response, { method: 'GET', action: 'result', headers });
    return { requestId: submit.request_id, result, logs: logsSeen };
  } catch (err) {
    if (ctx.signal.aborted) {
      // Best effort: the job costs money until fal stops it; the status of the PUT does not change our answer.
      await bestEffort(urls.cancel, { method: 'PUT', headers });
    }
    throw err;
  }
}

function jobFailed(ctx: CallContext, message: string): ProviderError {
  const providerMessage = redact(message, ctx.secrets);
  return new ProviderError({
    provider: ctx.provider,
    providerMessage,
    retryable: false,
    code: 'provider_job_failed',
    message: `${ctx.provider}: the job failed: ${providerMessage}`,
  });
}
