/**
 * Reading a model from the cache alone (HF_HUB_OFFLINE, `svd models path`, or the Hub unreachable):
 * `refs/<revision>` gives the commit, and every file we would download must be in `snapshots/<commit>/`.
 */
import { readFileSync } from 'node:fs';
import { HubError } from '../errors.js';
import { cachedSnapshotFile, readRef, repoCacheDir, snapshotDir } from './cache.js';
import { CONFIG_FILES, isShardIndex, shardsFromIndex, WEIGHTS } from './files.js';

export interface CachedSnapshot {
  repo: string;
  revision: string;
  commit: string;
  /** `<cache>/models--org--name/snapshots/<commit>`: a diffusers-layout directory. */
  dir: string;
  /** Repo paths present, configs first. */
  files: string[];
}

/** What is missing from the cache for `repo@revision`: empty when the snapshot is complete. */
export function missingFromCache(
  cacheDir: string,
  repo: string,
  revision: string,
  skip: readonly string[] = [],
): { commit?: string; missing: string[]; files: string[] } {
  const commit = readRef(cacheDir, repo, revision);
  if (!commit) return { missing: [`refs/${revision}`], files: [] };
  const has = (path: string) => cachedSnapshotFile(cacheDir, repo, commit, path) !== undefined;
  const files: string[] = [];
  const missing: string[] = [];
  for (const { path, optional } of CONFIG_FILES) {
    if (has(path)) files.push(path);
    else if (!optional) missing.push(path);
  }
  for (const { component, candidates } of WEIGHTS) {
    if (skip.includes(component)) continue;
    const found = candidates.find(has);
    if (!found) {
      // name the preferred file: that is what a pull would fetch
      missing.push(candidates[0]);
      continue;
    }
    files.push(found);
    if (isShardIndex(found)) {
      const text = readFileSync(cachedSnapshotFile(cacheDir, repo, commit, found)!, 'utf8');
      for (const shard of shardsFromIndex(found, text)) (has(shard) ? files : missing).push(shard);
    }
  }
  return { commit, missing, files };
}

/**
 * The cached snapshot of `repo@revision`, or HubError `hub_offline_missing` naming the first missing
 * file and the command that fetches it.
 */
export function findCachedSnapshot(
  cacheDir: string,
  repo: string,
  revision: string,
  pullHint: string,
  prefix = '',
  skip: readonly string[] = [],
): CachedSnapshot {
  const { commit, missing, files } = missingFromCache(cacheDir, repo, revision, skip);
  if (!commit) {
    throw new HubError(
      'hub_offline_missing',
      repo,
      `${prefix}${repo}@${revision} is not in the cache: ${repoCacheDir(cacheDir, repo)}/refs/${revision} is missing; run \`${pullHint}\` with network access`,
    );
  }
  if (missing.length) {
    const dir = snapshotDir(cacheDir, repo, commit);
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more: ${missing.slice(1).join(', ')})` : '';
    throw new HubError(
      'hub_offline_missing',
      repo,
      `${prefix}${repo}@${revision}: ${missing[0]} is not in the cache (${dir}/${missing[0]})${more}; run \`${pullHint}\` with network access`,
    );
  }
  return { repo, revision, commit, dir: snapshotDir(cacheDir, repo, commit), files };
}
