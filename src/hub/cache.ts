/**
 * The Hugging Face cache layout, shared with Python's huggingface_hub so that files downloaded by
 * diffusers are reused and ours are visible to it:
 *
 *   <cache>/models--org--name/blobs/<etag>                    file contents, named by ETag (sha256 for LFS files)
 *   <cache>/models--org--name/snapshots/<commit>/<path>       relative symlinks to ../../blobs/<etag>
 *   <cache>/models--org--name/refs/<revision>                 the commit a branch/tag pointed at when last fetched
 */
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { writeBytesAtomically } from '../io/atomicFile.js';

export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

/** `models--org--name` → `org/name`; undefined for other folders. */
export function repoFromFolderName(folder: string): string | undefined {
  const m = /^models--(.+)$/.exec(folder);
  return m ? m[1].split('--').join('/') : undefined;
}

export function repoCacheDir(cacheDir: string, repo: string): string {
  return join(cacheDir, repoFolderName(repo));
}

export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

export function blobPath(cacheDir: string, repo: string, etag: string): string {
  return join(repoCacheDir(cacheDir, repo), 'blobs', etag);
}

export function snapshotDir(cacheDir: string, repo: string, commit: string): string {
  return join(repoCacheDir(cacheDir, repo), 'snapshots', commit);
}

/** The commit `refs/<revision>` records, or the revision itself when it is a commit hash. */
export function readRef(cacheDir: string, repo: string, revision: string): string | undefined {
  if (isCommitHash(revision)) return revision;
  const file = join(repoCacheDir(cacheDir, repo), 'refs', revision);
  if (!existsSync(file)) return undefined;
  const commit = readFileSync(file, 'utf8').trim();
  return isCommitHash(commit) ? commit : undefined;
}

export function writeRef(cacheDir: string, repo: string, revision: string, commit: string): void {
  if (revision === commit) return; // Python writes no ref for a pinned commit either
  const file = join(repoCacheDir(cacheDir, repo), 'refs', revision);
  mkdirSync(dirname(file), { recursive: true });
  writeBytesAtomically(file, commit);
}

/** Repo paths come from the network or a shard index: refuse anything that could leave the snapshot. */
export function assertSafeRepoPath(path: string): void {
  if (!path || path.startsWith('/') || path.split('/').some((s) => s === '..' || s === '' || s === '.')) {
    throw new Error(`unsafe file path in repo: ${JSON.stringify(path)}`);
  }
}

/** Points `snapshots/<commit>/<path>` at the blob with a relative symlink (a copy where links are refused). */
export function linkSnapshotFile(cacheDir: string, repo: string, commit: string, path: string, etag: string): string {
  assertSafeRepoPath(path);
  const blob = blobPath(cacheDir, repo, etag);
  const link = join(snapshotDir(cacheDir, repo, commit), path);
  mkdirSync(dirname(link), { recursive: true });
  if (lstatOrUndefined(link)) unlinkSync(link);
  try {
    symlinkSync(relative(dirname(link), blob), link);
  } catch {
    copyFileSync(blob, link);
  }
  return link;
}

/** The snapshot file when it exists and resolves to a readable file (a dangling link counts as missing). */
export function cachedSnapshotFile(cacheDir: string, repo: string, commit: string, path: string): string | undefined {
  const file = join(snapshotDir(cacheDir, repo, commit), path);
  try {
    return statSync(file).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
}

export interface CachedRepo {
  repo: string;
  /** `<cache>/models--org--name`. */
  dir: string;
  /** Bytes of complete blobs. */
  sizeBytes: number;
  /** Bytes of `.incomplete` downloads that a later pull resumes. */
  incompleteBytes: number;
  /** revision → commit. */
  refs: Record<string, string>;
  snapshots: string[];
}

/** Every `models--*` folder in the cache, sorted by repo id. */
export function listCachedRepos(cacheDir: string): CachedRepo[] {
  if (!existsSync(cacheDir)) return [];
  const repos: CachedRepo[] = [];
  for (const entry of readdirSync(cacheDir, { withFileTypes: true })) {
    const repo = entry.isDirectory() ? repoFromFolderName(entry.name) : undefined;
    if (repo) repos.push(describeCachedRepo(cacheDir, repo));
  }
  return repos.sort((a, b) => a.repo.localeCompare(b.repo));
}

export function describeCachedRepo(cacheDir: string, repo: string): CachedRepo {
  const dir = repoCacheDir(cacheDir, repo);
  let sizeBytes = 0;
  let incompleteBytes = 0;
  for (const name of safeReaddir(join(dir, 'blobs'))) {
    const size = statSync(join(dir, 'blobs', name)).size;
    if (name.endsWith('.incomplete')) incompleteBytes += size;
    else sizeBytes += size;
  }
  const refs: Record<string, string> = {};
  collectRefs(join(dir, 'refs'), '', refs);
  return { repo, dir, sizeBytes, incompleteBytes, refs, snapshots: safeReaddir(join(dir, 'snapshots')).sort() };
}

function collectRefs(root: string, prefix: string, out: Record<string, string>): void {
  for (const name of safeReaddir(join(root, prefix))) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const full = join(root, rel);
    if (statSync(full).isDirectory()) collectRefs(root, rel, out);
    else out[rel] = readFileSync(full, 'utf8').trim();
  }
}

/** Deletes the repo's whole cache folder (all revisions); returns the bytes freed, or undefined if absent. */
export function removeCachedRepo(cacheDir: string, repo: string): number | undefined {
  const dir = repoCacheDir(cacheDir, repo);
  if (!existsSync(dir)) return undefined;
  const { sizeBytes, incompleteBytes } = describeCachedRepo(cacheDir, repo);
  rmSync(dir, { recursive: true, force: true });
  // huggingface_hub keeps its file locks in <cache>/.locks/models--org--name
  rmSync(join(cacheDir, '.locks', repoFolderName(repo)), { recursive: true, force: true });
  return sizeBytes + incompleteBytes;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
