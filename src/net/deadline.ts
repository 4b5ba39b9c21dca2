/**
 * A time limit joined with the caller's AbortSignal, on our own timer. Node 20 garbage-collects an
 * `AbortSignal.timeout()` that is only referenced through `AbortSignal.any()`, and the deadline then never
 * fires (an endless provider body ran past `--timeout 8` for a minute). Here the pending timer holds the
 * controller, so the signal fires whatever the collector does; `dispose()` clears the timer when done.
 */

export interface Deadline {
  /** Aborts when the time is up or the caller's signal aborts. */
  readonly signal: AbortSignal;
  /** The limit in milliseconds. */
  readonly ms: number;
  /** Epoch milliseconds when the deadline passes. */
  readonly at: number;
  /** True once the deadline itself (not the caller) aborted the signal. */
  readonly expired: boolean;
  /** Stops the timer and unhooks the caller's signal. */
  dispose(): void;
}

export function startDeadline(ms: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new DOMException(`deadline of ${ms} ms passed`, 'TimeoutError'));
  }, ms);
  // A forgotten deadline must not keep the process alive; a download in flight keeps it alive anyway.
  timer.unref();
  const onParent = () => controller.abort(parent?.reason);
  if (parent?.aborted) onParent();
  else parent?.addEventListener('abort', onParent, { once: true });
  return {
    signal: controller.signal,
    ms,
    at: Date.now() + ms,
    get expired() {
      return expired;
    },
    dispose() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}
