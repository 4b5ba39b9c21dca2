/**
 * File metadata from the Hub's resolve endpoint, read the way huggingface_hub does: a HEAD request on
 * `<endpoint>/<repo>/resolve/<revision>/<path>` without following the CDN redirect. The answer carries
 * the commit (`X-Repo-Commit`), the blob id (`X-Linked-Etag` = sha256 for LFS files, else `ETag` = git
 * blob sha1) and the size (`X-Linked-Size`, else Content-Length).
 */
import { HubError } from '../errors.js';
import { connectionError, hubHeaders, hubStatusError, type FetchLike } from './http.js';

export interface RemoteFile {
  repo: string;
  /** Path inside the repo, e.g. `unet/config.json`. */
  path: string;
  /** The commit the revision resolved to. */
  commit: string;
  /** Normalised ETag: the blob's name in the cache and its expected hash. */
  etag: string;
  size: number;
  /** True for LFS files (the etag is the sha256 of the content). */
  lfs: boolean;
  /** Where the bytes are: the CDN location for LFS files, else the resolve URL. */
  downloadUrl: string;
}

export interface HubRequestContext {
  endpoint: string;
  token: string | undefined;
  fetch: FetchLike;
  signal?: AbortSignal;
}

export function resolveUrl(endpoint: string, repo: string, revision: string, path: string): string {
  const encodedPath = path.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encodedPath}`;
}

/** Strips a weak-validator prefix and quotes: `W/"abc"` → `abc`. */
export function normaliseEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/**
 * HEADs one file. Returns undefined when the file does not exist at that revision (404 EntryNotFound);
 * throws HubError for gated/missing repos and connection failures.
 */
export async function fetchFileMetadata(
  ctx: HubRequestContext,
  repo: string,
  revision: string,
  path: string,
): Promise<RemoteFile | undefined> {
  let url = resolveUrl(ctx.endpoint, repo, revision, path);
  for (let hop = 0; hop < 5; hop++) {
    let res: Response;
    try {
      res = await ctx.fetch(url, {
        method: 'HEAD',
        redirect: 'manual',
        // identity: Content-Length must be the file's size, not a compressed one
        headers: hubHeaders(url, ctx.endpoint, ctx.token, { 'accept-encoding': 'identity' }),
        signal: ctx.signal,
      });
    } catch (err) {
      throw connectionError(err, url, repo);
    }
    const linkedEtag = res.headers.get('x-linked-etag');
    const etag = linkedEtag ?? res.headers.get('etag');
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location && !etag) {
      // a renamed repo: the Hub redirects to the new name without file headers; follow it
      url = new URL(location, url).href;
      continue;
    }
    if (res.status === 404 && (res.headers.get('x-error-code') ?? 'EntryNotFound') === 'EntryNotFound')
      return undefined;
    if (res.status >= 400) throw hubStatusError(res, repo, path, Boolean(ctx.token));
    const commit = res.headers.get('x-repo-commit');
    const sizeHeader = res.headers.get('x-linked-size') ?? res.headers.get('content-length');
    if (!commit || !etag || sizeHeader === null) {
      throw new HubError(
        'hub_download_failed',
        repo,
        `${repo}: ${path}: the server at ${ctx.endpoint} did not send X-Repo-Commit, ETag and size headers; is HF_ENDPOINT a Hugging Face Hub endpoint?`,
        res.status,
      );
    }
    return {
      repo,
      path,
      commit,
      etag: normaliseEtag(etag),
      size: Number(sizeHeader),
      lfs: linkedEtag !== null,
      downloadUrl: location ? new URL(location, url).href : url,
    };
  }
  throw new HubError('hub_download_failed', repo, `${repo}: ${path}: too many redirects from ${ctx.endpoint}`);
}
