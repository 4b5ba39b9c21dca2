/**
 * `pullModel`: fetches the files an SVD pipeline needs from the Hub into the shared cache and returns the
 * snapshot directory (diffusers layout). Every file is pinned to the commit that `model_index.json`
 * resolved to, so a branch that moves mid-pull cannot mix two versions. Files already in the cache
 * (ours or Python's) are linked, not fetched again.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AbortError, HubError } from '../errors.js';
import { blobPath, cachedSnapshotFile, linkSnapshotFile, readRef, snapshotDir, writeRef } from './cache.js';
import { downloadBlob, RetryableDownloadError, type DownloadProgress } from './download.js';
import { CONFIG_FILES, isShardIndex, shardsFromIndex, WEIGHTS } from './files.js';
import type { FetchLike } from './http.js';
import { fetchFileMetadata, type HubRequestContext, type RemoteFile } from './metadata.js';
import { resolveModelRef, type ModelDescriptor } from './registry.js';
import { withRetries } from '../net/retry.js';
import { hubSettings, type Env } from './settings.js';
import { findCachedSnapshot } from './snapshot.js';

const ABORTED = 'download aborted; run the same command again to resume';

export interface PullProgress extends DownloadProgress {
  /** 1-based position of this file in the pull. */
  fileIndex: number;
  fileCount: number;
  /** `cached`: already in the cache, nothing fetched. */
  status: 'cached' | 'downloading' | 'done';
}

export interface PullOptions {
  /** Overrides HF_TOKEN / the token file. */
  token?: string;
  /** Overrides the registry's revision (branch, tag or commit). */
  revision?: string;
  onProgress?: (progress: PullProgress) => void;
  /** Non-fatal notes, e.g. "the Hub is unreachable, using the cache". */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  /** Environment to read HF_* settings from (default process.env). */
  env?: Env;
  /** Injected fetch (tests); default the global fetch. */
  fetch?: FetchLike;
  /** Attempts per file after a cut transfer (default 4), with backoff from `retryDelayMs` (default 500). */
  retries?: number;
  retryDelayMs?: number;
}

export interface PulledModel {
  /** The directory to load: a cache snapshot (diffusers layout) or the local directory given. */
  snapshotDir: string;
  source: 'hub' | 'cache' | 'local';
  repo?: string;
  revision?: string;
  commit?: string;
  /** Repo paths in the snapshot. */
  files: string[];
  /** Bytes transferred by this call (0 when everything was cached). */
  downloadedBytes: number;
  /** Registry variants with `unetFrom` (motionctrl-svd): the UNet checkpoint file, pulled from its own repo. */
  unetCheckpoint?: string;
}

/**
 * Makes `ref` (registry name, Hub repo id or local directory) available locally and returns where.
 * With HF_HUB_OFFLINE=1 only the cache is read. When the Hub cannot be reached (or refuses the token)
 * and the cache holds a complete snapshot, that snapshot is used with a warning.
 *
 * @example const { snapshotDir } = await pullModel('svd-xt', { onProgress: (p) => console.error(p.path, p.downloadedBytes) });
 */
export async function pullModel(ref: string | ModelDescriptor, options: PullOptions = {}): Promise<PulledModel> {
  const desc = typeof ref === 'string' ? resolveModelRef(ref, options.revision) : ref;
  if (desc.kind === 'local') return { snapshotDir: desc.dir, source: 'local', files: [], downloadedBytes: 0 };
  const settings = hubSettings(options.env ?? process.env, options.token);
  const { repo, revision } = desc;
  const hint = `svd models pull ${desc.ref}${options.revision ? ` --revision ${options.revision}` : ''}`;
  const unetFrom = desc.variant?.unetFrom;
  const skip = unetFrom ? ['unet'] : [];
  const fromCache = (prefix = ''): PulledModel => {
    const snap = findCachedSnapshot(settings.cacheDir, repo, revision, hint, prefix, skip);
    const unetCheckpoint = unetFrom ? cachedUnetFile(settings.cacheDir, unetFrom, hint, prefix) : undefined;
    return {
      snapshotDir: snap.dir,
      source: 'cache',
      repo,
      revision,
      commit: snap.commit,
      files: snap.files,
      downloadedBytes: 0,
      unetCheckpoint,
    };
  };
  if (settings.offline) return fromCache('HF_HUB_OFFLINE is set (cache only): ');

  const ctx: HubRequestContext = {
    endpoint: settings.endpoint,
    token: settings.token,
    fetch: options.fetch ?? fetch,
    signal: options.signal,
  };
  let index: RemoteFile | undefined;
  try {
    index = await fetchFileMetadata(ctx, repo, revision, 'model_index.json');
  } catch (err) {
    // like huggingface_hub: when the Hub cannot answer (network, 5xx, or a token problem), a complete
    // cached snapshot is good enough; a missing repo or revision is not papered over
    if (!(err instanceof HubError) || err.code === 'hub_not_found') throw err;
    try {
      const cached = fromCache();
      options.onWarning?.(`${err.message}; using the cached snapshot ${cached.commit}`);
      return cached;
    } catch {
      throw err;
    }
  }
  if (!index) {
    throw new HubError(
      'hub_not_found',
      repo,
      `${repo}@${revision} has no model_index.json: not a diffusers-layout checkpoint`,
    );
  }
  const { plan, indexBytes } = await planFiles(ctx, repo, index, settings.cacheDir, options, skip);
  let unetFile: RemoteFile | undefined;
  if (unetFrom) {
    unetFile = await fetchFileMetadata(ctx, unetFrom.repo, unetFrom.revision, unetFrom.file);
    if (!unetFile)
      throw new HubError(
        'hub_not_found',
        unetFrom.repo,
        `${unetFrom.repo}@${unetFrom.revision} has no ${unetFrom.file}`,
      );
    plan.push(unetFile);
  }

  let downloadedBytes = indexBytes;
  for (const [i, file] of plan.entries()) {
    if (options.signal?.aborted) throw new AbortError(ABORTED);
    downloadedBytes += await ensureFile(ctx, file, settings.cacheDir, options, i + 1, plan.length);
  }
  writeRef(settings.cacheDir, repo, revision, index.commit);
  if (unetFrom && unetFile) writeRef(settings.cacheDir, unetFrom.repo, unetFrom.revision, unetFile.commit);
  return {
    snapshotDir: snapshotDir(settings.cacheDir, repo, index.commit),
    source: 'hub',
    repo,
    revision,
    commit: index.commit,
    files: plan.filter((f) => f !== unetFile).map((f) => f.path),
    downloadedBytes,
    unetCheckpoint: unetFile
      ? join(snapshotDir(settings.cacheDir, unetFile.repo, unetFile.commit), unetFile.path)
      : undefined,
  };
}

/** The cached UNet file of a `unetFrom` variant, or HubError `hub_offline_missing` with the command that fetches it. */
function cachedUnetFile(
  cacheDir: string,
  from: { repo: string; revision: string; file: string },
  hint: string,
  prefix: string,
): string {
  const commit = readRef(cacheDir, from.repo, from.revision);
  const file = commit ? cachedSnapshotFile(cacheDir, from.repo, commit, from.file) : undefined;
  if (!file)
    throw new HubError(
      'hub_offline_missing',
      from.repo,
      `${prefix}${from.repo}@${from.revision}: ${from.file} is not in the cache; run \`${hint}\` with network access`,
    );
  return file;
}

/**
 * HEADs every file we need (at the pinned commit), choosing fp16 weights when present. Shard indexes
 * are downloaded here (they name the shards); `indexBytes` counts what that transferred.
 */
async function planFiles(
  ctx: HubRequestContext,
  repo: string,
  index: RemoteFile,
  cacheDir: string,
  options: PullOptions,
  skip: readonly string[] = [],
): Promise<{ plan: RemoteFile[]; indexBytes: number }> {
  const commit = index.commit;
  const plan: RemoteFile[] = [index];
  let indexBytes = 0;
  for (const { path, optional } of CONFIG_FILES) {
    if (path === index.path) continue;
    const meta = await fetchFileMetadata(ctx, repo, commit, path);
    if (meta) plan.push(meta);
    else if (!optional)
      throw new HubError(
        'hub_not_found',
        repo,
        `${repo}@${commit}: ${path} is missing; not a complete SVD checkpoint in diffusers layout`,
      );
  }
  for (const { component, candidates } of WEIGHTS) {
    if (skip.includes(component)) continue;
    let found: RemoteFile | undefined;
    for (const path of candidates) {
      found = await fetchFileMetadata(ctx, repo, commit, path);
      if (found) break;
    }
    if (!found) {
      throw new HubError(
        'hub_not_found',
        repo,
        `${repo}@${commit}: no ${component} weights; looked for ${candidates.join(', ')}`,
      );
    }
    plan.push(found);
    if (isShardIndex(found.path)) {
      // the index names the shards, so it is fetched while planning
      indexBytes += await ensureFile(ctx, found, cacheDir, options, plan.length, plan.length);
      const text = readFileSync(blobPath(cacheDir, repo, found.etag), 'utf8');
      for (const shard of shardsFromIndex(found.path, text)) {
        const meta = await fetchFileMetadata(ctx, repo, commit, shard);
        if (!meta)
          throw new HubError(
            'hub_not_found',
            repo,
            `${repo}@${commit}: shard ${shard} named in ${found.path} is missing`,
          );
        plan.push(meta);
      }
    }
  }
  return { plan, indexBytes };
}

/** Puts one file in the cache (unless its blob is already there) and links it; returns bytes fetched. */
async function ensureFile(
  ctx: HubRequestContext,
  file: RemoteFile,
  cacheDir: string,
  options: PullOptions,
  fileIndex: number,
  fileCount: number,
): Promise<number> {
  const blob = blobPath(cacheDir, file.repo, file.etag);
  const base = {
    repo: file.repo,
    path: file.path,
    totalBytes: file.size,
    fileIndex,
    fileCount,
    bytesPerSecond: 0,
    etaSeconds: undefined,
  };
  if (existsSync(blob) && statSync(blob).size === file.size) {
    options.onProgress?.({
      ...base,
      downloadedBytes: file.size,
      resumedFromBytes: file.size,
      done: true,
      status: 'cached',
    });
    linkSnapshotFile(cacheDir, file.repo, file.commit, file.path, file.etag);
    return 0;
  }
  // two pulls of the same model in one process (e.g. two server requests) share one transfer, instead
  // of appending to the same .incomplete file
  const running = inflight.get(blob);
  if (running) {
    await running;
    linkSnapshotFile(cacheDir, file.repo, file.commit, file.path, file.etag);
    return 0;
  }
  const transfer = transferWithRetries(ctx, file, blob, options, (p) =>
    options.onProgress?.({ ...base, ...p, fileIndex, fileCount, status: p.done ? 'done' : 'downloading' }),
  );
  inflight.set(blob, transfer);
  try {
    const fetched = await transfer;
    linkSnapshotFile(cacheDir, file.repo, file.commit, file.path, file.etag);
    return fetched;
  } finally {
    inflight.delete(blob);
  }
}

const inflight = new Map<string, Promise<number>>();

/** downloadBlob with retries for cut transfers; returns the bytes this call added to the disk. */
async function transferWithRetries(
  ctx: HubRequestContext,
  file: RemoteFile,
  blob: string,
  options: PullOptions,
  onProgress: (p: DownloadProgress) => void,
): Promise<number> {
  const retries = options.retries ?? 4;
  const delay = options.retryDelayMs ?? 500;
  const partial = `${blob}.incomplete`;
  const alreadyOnDisk = existsSync(partial) ? statSync(partial).size : 0;
  let current = file;
  await withRetries(() => downloadBlob(ctx, current, blob, onProgress), {
    retries,
    delayFor: (err, attempt) => {
      const transient =
        err instanceof RetryableDownloadError || (err instanceof HubError && err.code === 'hub_unreachable');
      return transient && !options.signal?.aborted ? delay * 2 ** attempt : undefined;
    },
    wait: async (ms, err, attempt) => {
      options.onWarning?.(`${(err as Error).message}; retrying (${attempt + 1}/${retries})`);
      await sleep(ms, options.signal);
      // a fresh HEAD: CDN links are signed and expire
      current = (await fetchFileMetadata(ctx, file.repo, file.commit, file.path)) ?? file;
    },
  });
  return Math.max(0, file.size - alreadyOnDisk);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ms <= 0) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new AbortError(ABORTED));
      },
      { once: true },
    );
  });
}
