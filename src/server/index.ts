/**
 * `svd serve` as a module: an HTTP server that answers Segmind's, fal's, OpenAI's and VoltageGPU's video
 * APIs (and our own page) from one local job queue, so code written for those services runs here by
 * changing only its base URL and key.
 *
 *   import { startServer } from 'svd-runtime/server';
 *   const server = await startServer({ port: 8080, defaults: { steps: 20 } });
 *   // curl -X POST $URL/v1/svd -H 'content-type: application/json' -d '{"image": "<base64>"}' -o out.mp4
 *   await server.close();
 */
export { startServer, type RunningServer } from './server.js';
export type { ServerOptions } from './options.js';
export { isPrivateAddress } from '../net/netGuard.js';
export { QueueFullError, type Job, type JobStatus } from './jobs.js';
