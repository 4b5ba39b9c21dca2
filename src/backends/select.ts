/**
 * Which backend runs a job. `auto` prefers the local pipeline when a GPU and the model are there (the caller
 * knows; it passes `localAvailable`), else the first provider with a key, in the order segmind, fal,
 * voltage, openai (SVD-native services first; OpenAI's Sora is a different model), else local anyway.
 */
import { InvalidRequestError } from '../errors.js';
import { findApiKey, PROVIDER_ENV, REMOTE_BACKENDS, type RemoteBackendName } from './options.js';

export const BACKEND_CHOICES = ['auto', 'local', ...REMOTE_BACKENDS] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
export type BackendName = 'local' | RemoteBackendName;

export interface SelectOptions {
  /** Default `auto`. */
  backend?: string;
  /** Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** An explicit key (`--api-key`): it belongs to one provider, so `auto` cannot use it. */
  apiKey?: string;
  /** Whether the local pipeline can run well here (GPU and model present). */
  localAvailable?: boolean | (() => boolean | Promise<boolean>);
}

export interface Selection {
  name: BackendName;
  /** Why, in words, for `BackendResult.reason` and logs. */
  reason: string;
}

export function isBackendChoice(value: string): value is BackendChoice {
  return (BACKEND_CHOICES as readonly string[]).includes(value);
}

/**
 * Picks a backend; throws InvalidRequestError (field `backend`) for an unknown choice or `auto` with an
 * explicit key. `auto` with neither a local GPU+model nor any key falls back to local (it still runs).
 */
export async function selectBackend(o: SelectOptions = {}): Promise<Selection> {
  const choice = o.backend ?? 'auto';
  if (!isBackendChoice(choice)) {
    throw new InvalidRequestError([
      { field: 'backend', value: choice, message: `must be one of ${BACKEND_CHOICES.join(', ')}` },
    ]);
  }
  if (choice !== 'auto') return { name: choice, reason: 'chosen explicitly' };
  if (o.apiKey) {
    throw new InvalidRequestError([
      {
        field: 'backend',
        value: choice,
        message: 'an explicit API key needs the backend it belongs to (segmind, fal, voltage or openai), not auto',
      },
    ]);
  }
  const local = typeof o.localAvailable === 'function' ? await o.localAvailable() : o.localAvailable;
  if (local) return { name: 'local', reason: 'auto: a GPU and the model are available locally' };
  const env = o.env ?? process.env;
  for (const provider of REMOTE_BACKENDS) {
    if (findApiKey(provider, { env })) {
      return {
        name: provider,
        reason: `auto: no local GPU with the model; ${PROVIDER_ENV[provider].keyVars[0]} is set`,
      };
    }
  }
  // Nothing better: the local pipeline still runs, on the CPU or without the preferred model.
  const vars = REMOTE_BACKENDS.map((p) => PROVIDER_ENV[p].keyVars[0]).join(', ');
  return { name: 'local', reason: `auto: no GPU with the model and none of ${vars} set; running locally anyway` };
}
