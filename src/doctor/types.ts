/** The shape of one `svd doctor` finding. */

/** `fail` is a problem (non-zero exit), `warn` a limitation, `info` context, `ok` fine. */
export type CheckStatus = 'ok' | 'info' | 'warn' | 'fail';

export interface Check {
  /** Stable id, e.g. `ffmpeg`, `gpu`, `provider.cuda`, `ffmpeg.encoder.libx264`. */
  id: string;
  /** Short label for the text report. */
  label: string;
  status: CheckStatus;
  /** What was found, in one line. */
  detail: string;
  /** The command (or step) that fixes it; present on every `warn` and `fail`. */
  fix?: string;
}
