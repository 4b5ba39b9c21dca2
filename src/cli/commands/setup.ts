/** `svd setup cuda`: installs onnxruntime-node's CUDA execution provider and reports what it needs. */
import type { Command } from 'commander';
import { SvdError } from '../../errors.js';
import { formatSetupReport, setupCuda } from '../../setup/cuda.js';

export function registerSetup(program: Command): void {
  const setup = program.command('setup').description('install optional runtime pieces');
  setup
    .command('cuda')
    .description(
      "download onnxruntime-node's CUDA execution provider (from NuGet, through onnxruntime-node's own installer) and check it; " +
        'offline: see the manual route printed on failure',
    )
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      let report: Awaited<ReturnType<typeof setupCuda>>;
      try {
        report = await setupCuda({ onOutput: (line) => process.stderr.write(`  installer: ${line}\n`) });
      } catch (err) {
        if (!opts.json || !(err instanceof SvdError)) throw err;
        // --json promises JSON on stdout, also when the install fails (same exit code as without --json)
        process.stdout.write(
          `${JSON.stringify({ ok: false, error: { code: err.code, message: err.message } }, null, 2)}\n`,
        );
        process.exitCode = 2;
        return;
      }
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ ok: report.probe.ok, ...report }, null, 2)}\n`
          : `${formatSetupReport(report).join('\n')}\n`,
      );
      if (!report.probe.ok) process.exitCode = 1;
    });
}
