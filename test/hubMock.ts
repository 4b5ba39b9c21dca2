/**
 * A loopback imitation of the Hugging Face Hub's file endpoints, for the hub tests:
 *  - `HEAD|GET /<org>/<name>/resolve/<rev>/<path>` on the "hub" server: small files answered directly
 *    (ETag = git blob sha1), LFS files (*.safetensors) with a 302 to the "cdn" server and X-Linked-Etag
 *    (sha256) / X-Linked-Size; X-Repo-Commit on every answer; 401/403 for gated repos; 404 with
 *    X-Error-Code; a 307 for a renamed repo.
 *  - `GET /cdn/<sha256>` on a second server (another origin, like the real CDN), with Range support and
 *    switches to cut a transfer half-way or to send corrupted bytes.
 * Expected hashes are computed here with node:crypto, independently of the code under test.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MockRepo {
  repo: string;
  commit: string;
  files: Record<string, Uint8Array>;
  /** Token accepted for a gated repo; requests without it get 401, with another token 403. */
  gatedToken?: string;
  /** Old name that answers with a 307 to this repo. */
  renamedFrom?: string;
}

export interface RequestLog {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  authorization?: string;
  range?: string;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function gitBlobSha1(bytes: Uint8Array): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

export function isLfs(path: string): boolean {
  return path.endsWith('.safetensors');
}

export interface MockHub {
  endpoint: string;
  cdnOrigin: string;
  requests: RequestLog[];
  /** The next CDN transfer of `path` sends `bytes` bytes of the body, then drops the connection. */
  cutNext(path: string, bytes: number): void;
  /** Transfers of `path` (CDN or direct) send these bytes instead (same length, different content). */
  corrupt(path: string, bytes: Uint8Array): void;
  close(): Promise<void>;
}

export async function startMockHub(repos: MockRepo[]): Promise<MockHub> {
  const requests: RequestLog[] = [];
  const cuts = new Map<string, number>();
  const corrupted = new Map<string, Uint8Array>();
  const byOid = new Map<string, { path: string; bytes: Uint8Array }>();
  for (const r of repos)
    for (const [path, bytes] of Object.entries(r.files)) if (isLfs(path)) byOid.set(sha256(bytes), { path, bytes });

  const log = (server: 'hub' | 'cdn', req: IncomingMessage) =>
    requests.push({
      server,
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      range: req.headers.range,
    });

  const cdn = createServer((req, res) => {
    log('cdn', req);
    const oid = /^\/cdn\/([0-9a-f]{64})/.exec(req.url ?? '')?.[1];
    const entry = oid ? byOid.get(oid) : undefined;
    if (!entry) return void res.writeHead(404).end();
    const body = corrupted.get(entry.path) ?? entry.bytes;
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) start = Number(m[1]);
    if (start >= body.length && body.length > 0) return void res.writeHead(416).end();
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'content-length': body.length - start,
      'accept-ranges': 'bytes',
    };
    if (m) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(m ? 206 : 200, headers);
    if (req.method === 'HEAD') return void res.end();
    const cut = cuts.get(entry.path);
    if (cut !== undefined) {
      cuts.delete(entry.path);
      res.write(body.subarray(start, start + cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body.subarray(start));
  });

  const hub = createServer((req, res) => {
    log('hub', req);
    handleResolve(req, res);
  });

  const cdnOrigin = await listen(cdn);
  const endpoint = await listen(hub);

  function handleResolve(req: IncomingMessage, res: ServerResponse): void {
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    const [, repoId, rev, rawPath] = m;
    const path = rawPath.split('/').map(decodeURIComponent).join('/');
    const renamed = repos.find((r) => r.renamedFrom === repoId);
    if (renamed) return void res.writeHead(307, { location: `/${renamed.repo}/resolve/${rev}/${rawPath}` }).end();
    const repo = repos.find((r) => r.repo === repoId);
    if (!repo) return void res.writeHead(401, { 'x-error-code': 'RepoNotFound' }).end();
    if (repo.gatedToken) {
      const auth = req.headers.authorization;
      if (!auth)
        return void res
          .writeHead(401, { 'x-error-code': 'GatedRepo', 'x-error-message': 'Access to this model is restricted' })
          .end();
      if (auth !== `Bearer ${repo.gatedToken}`) return void res.writeHead(403, { 'x-error-code': 'GatedRepo' }).end();
    }
    if (rev !== 'main' && rev !== repo.commit)
      return void res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end();
    const bytes = repo.files[path];
    if (!bytes) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': repo.commit }).end();
    if (isLfs(path)) {
      const oid = sha256(bytes);
      res.writeHead(302, {
        location: `${cdnOrigin}/cdn/${oid}?X-Amz-Signature=abc`,
        'x-repo-commit': repo.commit,
        'x-linked-etag': `"${oid}"`,
        'x-linked-size': bytes.length,
        etag: `"${gitBlobSha1(new TextEncoder().encode(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${bytes.length}\n`))}"`,
        'content-length': 0,
      });
      return void res.end();
    }
    res.writeHead(200, {
      'x-repo-commit': repo.commit,
      etag: `W/"${gitBlobSha1(bytes)}"`,
      'content-length': bytes.length,
      'content-type': 'application/json',
    });
    res.end(req.method === 'HEAD' ? undefined : (corrupted.get(path) ?? bytes));
  }

  return {
    endpoint,
    cdnOrigin,
    requests,
    cutNext: (path, bytes) => cuts.set(path, bytes),
    corrupt: (path, bytes) => corrupted.set(path, bytes),
    close: async () => {
      await Promise.all([close(hub), close(cdn)]);
    },
  };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
