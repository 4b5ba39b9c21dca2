/**
 * Routes: method + path pattern → handler, each with the dialect whose error shape it answers in. The
 * first matching pattern wins; a path that matches with another method is a 405 in that route's dialect.
 */
import type { Ctx } from './context.js';
import type { HttpError } from './http.js';

/** Writes an error in a dialect's own shape (Segmind `{error}`, fal `{detail}`, OpenAI `{error:{...}}`). */
export type ErrorWriter = (ctx: Ctx, err: HttpError) => void;

export interface Route {
  method: string;
  path: RegExp;
  handler: (ctx: Ctx) => Promise<void> | void;
  errors: ErrorWriter;
  /** Served without the API key (the web page's static files and capability-token file URLs). */
  public?: boolean;
}

export type RouteMatch = { route: Route; params: string[] } | { wrongMethod: Route } | undefined;

export function matchRoute(routes: readonly Route[], method: string, pathname: string): RouteMatch {
  let wrongMethod: Route | undefined;
  for (const route of routes) {
    const m = route.path.exec(pathname);
    if (!m) continue;
    if (route.method === method || (route.method === 'GET' && method === 'HEAD')) return { route, params: m.slice(1) };
    wrongMethod ??= route;
  }
  return wrongMethod ? { wrongMethod } : undefined;
}
