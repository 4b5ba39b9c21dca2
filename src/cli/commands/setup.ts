/** `svd setup cuda`: installs onnxruntime-node's CUDA execution provider and reports what it needs. */
import type { Command } from 'commander';
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
      const report = await setupCuda({ onOutput: (line) => process.stderr.write(`  installer: ${line}\n`) });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatSetupReport(report).join('\n')}\n`);
      if (!report.probe.ok) process.exitCode = 1;
    });
}
