/**
 * The `svd` command line. Each subcommand lives in its own file under ./commands and registers
 * itself on the program; errors from our code (SvdError) are printed as one clear message, never a stack.
 */
import { Command, CommanderError } from 'commander';
import { AbortError, SvdError } from '../errors.js';
import { commands } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command('svd')
    .description(
      'Stable Video Diffusion: image to video, locally through onnxruntime (CUDA or CPU) or through hosted APIs',
    )
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  for (const register of commands) register(program);
  return program;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    return reportError(err);
  }
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander already printed its message (unknown option, --help, --version)
    return err.exitCode;
  }
  if (err instanceof AbortError) {
    process.stderr.write(`svd: ${err.message}\n`);
    return 130; // interrupted: the shell convention for SIGINT (128 + 2), not a usage error
  }
  if (err instanceof SvdError) {
    process.stderr.write(`svd: ${err.message}\n`);
    return 2;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`svd: unexpected error: ${message}\n`);
  if (process.env.SVD_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  return 1;
}
