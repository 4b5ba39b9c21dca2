/**
 * Streams one file into the cache as `blobs/<etag>`: resumable through `blobs/<etag>.incomplete` and an
 * HTTP Range request, hashed while it streams, verified against the etag (sha256 for LFS files, the
 * git blob sha1 for small files) and renamed into place only when it matches. A corrupt file is
 * deleted and reported; a cut transfer leaves the partial file for the next attempt.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, renameSync, statSync, unlinkSync, mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HubError } from '../errors.js';
import { connectionError, hubHeaders, isAbort } from './http.js';
import type { HubRequestContext, RemoteFile } from './metadata.js';

export interface DownloadProgress {
  repo: string;
  path: string;
  downloadedBytes: number;
  totalBytes: number;
  /** Bytes already on disk when this transfer started (a resumed download). */
  resumedFromBytes: number;
  /** Average over this transfer; 0 before the first chunk. */
  bytesPerSecond: number;
  /** Seconds left at the current rate; undefined while the rate is unknown. */
  etaSeconds: number | undefined;
  done: boolean;
}

export type ProgressCallback = (progress: DownloadProgress) => void;

/** A failure worth another attempt (cut connection, short body); the partial file is kept. */
export class RetryableDownloadError extends HubError {
  constructor(repo: string, message: string) {
    super('hub_download_failed', repo, message);
  }
}

type Verifier = 'sha256' | 'git-sha1' | 'size-only';

/** What the etag tells us: a 64-hex sha256 (LFS), a 40-hex git blob id, or nothing checkable. */
export function verifierFor(file: Pick<RemoteFile, 'etag' | 'lfs'>): Verifier {
  if (/^[0-9a-f]{64}$/.test(file.etag)) return 'sha256';
  if (!file.lfs && /^[0-9a-f]{40}$/.test(file.etag)) return 'git-sha1';
  return 'size-only';
}

function newHash(verifier: Verifier, size: number): Hash | undefined {
  if (verifier === 'sha256') return createHash('sha256');
  if (verifier === 'git-sha1') return createHash('sha1').update(`blob ${size}\0`);
  return undefined;
}

const PROGRESS_INTERVAL_MS = 200;

/** Downloads `file` to `blob` (the final blob path). Throws RetryableDownloadError for transient failures. */
export async function downloadBlob(
  ctx: HubRequestContext,
  file: RemoteFile,
  blob: string,
  onProgress?: ProgressCallback,
): Promise<void> {
  const partial = `${blob}.incomplete`;
  mkdirSync(dirname(blob), { recursive: true });
  let start = existsSync(partial) ? statSync(partial).size : 0;
  if (start > file.size) {
    unlinkSync(partial);
    start = 0;
  }

  let res: Response | undefined;
  if (start < file.size || file.size === 0) {
    const range: Record<string, string> = start > 0 ? { range: `bytes=${start}-` } : {};
    try {
      res = await ctx.fetch(file.downloadUrl, {
        headers: hubHeaders(file.downloadUrl, ctx.endpoint, ctx.token, { 'accept-encoding': 'identity', ...range }),
        redirect: 'follow',
        signal: ctx.signal,
      });
    } catch (err) {
      throw connectionError(err, file.downloadUrl, file.repo);
    }
    if (res.status === 416) {
      // the server refuses our range: the partial file is not what it has; start over next attempt
      unlinkSync(partial);
      throw new RetryableDownloadError(file.repo, `${file.repo}: ${file.path}: range not satisfiable, restarting`);
    }
    if (res.status !== 200 && res.status !== 206) {
      throw new RetryableDownloadError(file.repo, `${file.repo}: ${file.path}: download answered HTTP ${res.status}`);
    }
    if (res.status === 206 && contentRangeStart(res) !== start) {
      unlinkSync(partial);
      throw new RetryableDownloadError(file.repo, `${file.repo}: ${file.path}: unexpected Content-Range, restarting`);
    }
    if (res.status === 200) start = 0; // the server sent the whole file
  }

  const verifier = verifierFor(file);
  const hash = newHash(verifier, file.size);
  if (hash && start > 0) await hashFile(partial, hash);

  const began = Date.now();
  let downloaded = start;
  let lastReport = 0;
  const report = (done: boolean) => {
    const elapsed = (Date.now() - began) / 1000;
    const rate = elapsed > 0 ? (downloaded - start) / elapsed : 0;
    onProgress?.({
      repo: file.repo,
      path: file.path,
      downloadedBytes: downloaded,
      totalBytes: file.size,
      resumedFromBytes: start,
      bytesPerSecond: rate,
      etaSeconds: rate > 0 ? (file.size - downloaded) / rate : undefined,
      done,
    });
  };

  if (res?.body) {
    const out = await open(partial, start > 0 ? 'a' : 'w');
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        await out.write(chunk);
        hash?.update(chunk);
        downloaded += chunk.length;
        if (downloaded > file.size) break; // more than announced: reported by the size check below
        const now = Date.now();
        if (now - lastReport >= PROGRESS_INTERVAL_MS) {
          lastReport = now;
          report(false);
        }
      }
    } catch (err) {
      if (isAbort(err) || ctx.signal?.aborted) throw connectionError(err, file.downloadUrl, file.repo);
      throw new RetryableDownloadError(
        file.repo,
        `${file.repo}: ${file.path}: transfer cut at ${downloaded} of ${file.size} bytes (${(err as Error).message})`,
      );
    } finally {
      await out.close();
    }
  } else if (!existsSync(partial)) {
    await (await open(partial, 'w')).close();
  }

  const onDisk = statSync(partial).size;
  if (onDisk < file.size) {
    throw new RetryableDownloadError(
      file.repo,
      `${file.repo}: ${file.path}: transfer ended at ${onDisk} of ${file.size} bytes`,
    );
  }
  if (onDisk > file.size) {
    unlinkSync(partial);
    throw new HubError(
      'hub_integrity',
      file.repo,
      `${file.repo}: ${file.path}: the server sent ${onDisk} bytes, expected ${file.size}; the file was deleted, run the command again`,
    );
  }
  if (hash) {
    const digest = hash.digest('hex');
    if (digest !== file.etag) {
      unlinkSync(partial);
      const name = verifier === 'sha256' ? 'sha256' : 'git blob sha1';
      throw new HubError(
        'hub_integrity',
        file.repo,
        `${file.repo}: ${file.path} is corrupt: ${name} ${digest} does not match the Hub's ${file.etag}; the file was deleted, run the command again`,
      );
    }
  }
  renameSync(partial, blob);
  report(true);
}

function contentRangeStart(res: Response): number | undefined {
  const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}
