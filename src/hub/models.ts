/**
 * Cache-level operations behind `svd models list | path | rm`: what is cached for each registry
 * variant (and any other repo in the cache), where a model's snapshot is, and removing one. None of
 * these touch the network.
 */
import { ModelNotFoundError } from '../errors.js';
import { listCachedRepos, removeCachedRepo, snapshotDir } from './cache.js';
import { REGISTRY, resolveModelRef, type RegistryVariant } from './registry.js';
import { hubSettings, type Env } from './settings.js';
import { findCachedSnapshot, missingFromCache } from './snapshot.js';

export interface ModelListing {
  /** Registry name; undefined for other repos found in the cache. */
  name?: string;
  repo: string;
  variant?: RegistryVariant;
  cache?: {
    sizeBytes: number;
    incompleteBytes: number;
    /** The snapshot `revision` (main) points at, when recorded. */
    commit?: string;
    /** Every file a pipeline needs is present in that snapshot. */
    complete: boolean;
    snapshotDir?: string;
  };
}

/** Registry variants (cached or not) followed by every other repo in the cache. */
export function listModels(env: Env = process.env): { cacheDir: string; models: ModelListing[] } {
  const { cacheDir } = hubSettings(env);
  const cached = new Map(listCachedRepos(cacheDir).map((r) => [r.repo, r]));
  const describe = (repo: string, revision: string, skip: string[] = []): ModelListing['cache'] => {
    const entry = cached.get(repo);
    if (!entry) return undefined;
    const { commit, missing } = missingFromCache(cacheDir, repo, revision, skip);
    const fallback = commit ?? entry.snapshots.at(-1);
    return {
      sizeBytes: entry.sizeBytes,
      incompleteBytes: entry.incompleteBytes,
      commit,
      complete: commit !== undefined && missing.length === 0,
      snapshotDir: fallback ? snapshotDir(cacheDir, repo, fallback) : undefined,
    };
  };
  // a variant whose UNet comes from another repo (motionctrl-svd) needs the base repo without its unet weights
  const models: ModelListing[] = REGISTRY.map((v) => ({
    name: v.name,
    repo: v.repo,
    variant: v,
    cache: describe(v.repo, v.revision, v.unetFrom ? ['unet'] : []),
  }));
  for (const repo of cached.keys()) {
    if (!REGISTRY.some((v) => v.repo === repo)) models.push({ repo, cache: describe(repo, 'main') });
  }
  return { cacheDir, models };
}

/**
 * The directory to load for `ref`: a local directory as is, or the cached snapshot of a Hub model.
 * Throws (HubError `hub_offline_missing`) naming the missing file and the pull command.
 */
export function modelPath(ref: string, options: { env?: Env; revision?: string } = {}): string {
  const desc = resolveModelRef(ref, options.revision);
  if (desc.kind === 'local') return desc.dir;
  const { cacheDir } = hubSettings(options.env ?? process.env);
  const hint = `svd models pull ${ref}${options.revision ? ` --revision ${options.revision}` : ''}`;
  return findCachedSnapshot(cacheDir, desc.repo, desc.revision, hint, '', desc.variant?.unetFrom ? ['unet'] : []).dir;
}

/** Deletes every cached revision of a Hub model; returns the repo and the bytes freed. */
export function removeModel(ref: string, options: { env?: Env } = {}): { repo: string; freedBytes: number } {
  const desc = resolveModelRef(ref);
  if (desc.kind === 'local') {
    throw new ModelNotFoundError(
      desc.dir,
      'is a local directory, not a cached Hub model; delete it yourself if you mean to',
    );
  }
  const { cacheDir } = hubSettings(options.env ?? process.env);
  const freed = removeCachedRepo(cacheDir, desc.repo);
  if (freed === undefined) throw new ModelNotFoundError(desc.repo, `not in the cache (${cacheDir})`);
  return { repo: desc.repo, freedBytes: freed };
}
