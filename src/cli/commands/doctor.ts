/** `svd doctor [--json]`: checks the local set-up; exit code 1 when a problem is found. */
import type { Command } from 'commander';
import { formatDoctorReport, runDoctor } from '../../doctor/doctor.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'check Node, onnxruntime, execution providers, GPU, ffmpeg and cached models; prints the fix for each problem',
    )
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      const report = await runDoctor();
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}
