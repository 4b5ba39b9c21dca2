/**
 * onnxruntime 1.29+ ships telemetry on Linux and macOS too (a 1DS uploader that resolves and contacts
 * mobile.events.data.microsoft.com some seconds after the first session). A local run must not touch the
 * network, so every place that loads onnxruntime sets `ORT_DISABLE_TELEMETRY=1` first: onnxruntime reads it
 * natively when its environment is created and latches the decision for the process (upstream
 * onnxruntime/core/platform/posix/telemetry.cc, added in 1.29). Setting `process.env` calls setenv(3),
 * so the native getenv of a worker thread or child process sees it.
 */
export const ORT_TELEMETRY_OFF = { ORT_DISABLE_TELEMETRY: '1' } as const;

/** Turns onnxruntime's telemetry off for this process; call before onnxruntime is loaded. */
export function disableOrtTelemetry(): void {
  process.env.ORT_DISABLE_TELEMETRY = ORT_TELEMETRY_OFF.ORT_DISABLE_TELEMETRY;
}
