/**
 * HTTP pieces shared by metadata lookups and downloads: which requests carry the token, and how Hub
 * status codes become errors that say what to do. The token is only ever sent to the Hub endpoint's own
 * origin (never to the CDN it redirects to) and never appears in a message.
 */
import { AbortError, HubError } from '../errors.js';
import { networkCause } from '../net/cause.js';

export type FetchLike = typeof fetch;

export const USER_AGENT = 'svd-runtime/0.1 (node)';

/** Headers for a request to `url`; Authorization only when `url` is on the endpoint's origin. */
export function hubHeaders(
  url: string,
  endpoint: string,
  token: string | undefined,
  extra: Record<string, string> = {},
): Record<string, string> {
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...extra };
  if (token && new URL(url).origin === new URL(endpoint).origin) headers.authorization = `Bearer ${token}`;
  return headers;
}

/** The public model page, where the licence of a gated repo is accepted. */
export function modelPage(repo: string): string {
  return `https://huggingface.co/${repo}`;
}

/** Turns a non-success Hub answer into a HubError that names the repo/file and the fix. */
export function hubStatusError(res: Response, repo: string, path: string, hadToken: boolean): HubError {
  const code = res.headers.get('x-error-code') ?? '';
  const status = res.status;
  if (code === 'RepoNotFound' || code === 'RepositoryNotFound') {
    return new HubError(
      'hub_not_found',
      repo,
      `${repo}: repository not found on the Hub (HTTP ${status}); check the name${hadToken ? '' : ', and for a private repo set HF_TOKEN'}`,
      status,
    );
  }
  if (status === 401 || status === 403 || code === 'GatedRepo') {
    const how = hadToken
      ? 'the token was refused, or its account has not accepted the licence yet'
      : 'no token was given';
    return new HubError(
      'hub_auth_required',
      repo,
      `${repo} is gated (HTTP ${status}, ${how}): sign in and accept the licence on ${modelPage(repo)}, ` +
        'create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN=<token> (or pass --token)',
      status,
    );
  }
  if (code === 'RevisionNotFound') {
    return new HubError(
      'hub_not_found',
      repo,
      `${repo}: revision not found (HTTP ${status}); check --revision`,
      status,
    );
  }
  if (status === 404) {
    return new HubError('hub_not_found', repo, `${repo}: ${path} not found on the Hub (HTTP 404)`, status);
  }
  return new HubError(
    'hub_download_failed',
    repo,
    `${repo}: ${path}: the Hub answered HTTP ${status} ${res.statusText}`.trim(),
    status,
  );
}

/**
 * Maps an exception thrown by fetch: aborts become AbortError, connection failures become
 * `hub_unreachable` naming the host and the system error code (ENOTFOUND, ECONNREFUSED, ...).
 */
export function connectionError(err: unknown, url: string, repo: string): Error {
  if (isAbort(err)) return new AbortError('download aborted; run the same command again to resume');
  const reason = networkCause(err);
  return new HubError(
    'hub_unreachable',
    repo,
    `cannot reach ${new URL(url).origin} (${reason}); check the network or HF_ENDPOINT, or use the files already cached with HF_HUB_OFFLINE=1`,
  );
}

export function isAbort(err: unknown): boolean {
  return err instanceof AbortError || (err instanceof Error && err.name === 'AbortError');
}
