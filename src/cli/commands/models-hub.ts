/** `svd models pull | list | path | rm`: models from the Hugging Face Hub and the shared cache. */
import type { Command } from 'commander';
import { formatBytes, formatProgressLine } from '../../hub/progress.js';
import { listModels, modelPath, removeModel } from '../../hub/models.js';
import { pullModel, type PullProgress } from '../../hub/pull.js';
import { variantDefaults } from '../../models/variants.js';
import { getOrCreateModelsCommand } from './models-root.js';

export function registerModelsHub(program: Command): void {
  const models = getOrCreateModelsCommand(program);

  models
    .command('pull')
    .description(
      'download a model (registry name or Hugging Face repo id) into the Hugging Face cache; prints the snapshot directory',
    )
    .argument('<model>', 'svd, svd-xt, svd-xt-1-1, or a repo id in diffusers layout (owner/name)')
    .option(
      '--token <token>',
      'Hugging Face access token (default: HF_TOKEN, or the token saved by `huggingface-cli login`)',
    )
    .option('--revision <rev>', 'branch, tag or commit (default: the registry revision, main)')
    .action(async (ref: string, opts: { token?: string; revision?: string }) => {
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      const bar = progressBar();
      try {
        const pulled = await pullModel(ref, {
          token: opts.token,
          revision: opts.revision,
          signal: controller.signal,
          onProgress: bar.update,
          onWarning: (m) => bar.note(`warning: ${m}`),
        });
        bar.finish();
        if (pulled.source === 'hub') {
          process.stderr.write(
            `${pulled.repo}@${pulled.commit}: ${pulled.files.length} files, ${formatBytes(pulled.downloadedBytes)} downloaded\n`,
          );
        }
        process.stdout.write(`${pulled.snapshotDir}\n`);
      } finally {
        bar.finish();
        process.off('SIGINT', onSignal);
      }
    });

  models
    .command('list')
    .description('list the known model variants and what is in the Hugging Face cache')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const { cacheDir, models: rows } = listModels();
      if (opts.json) {
        const models = rows.map(({ variant, ...r }) => ({
          ...r,
          defaults: variant && variantDefaults(variant.name),
          licence: variant?.licence,
        }));
        process.stdout.write(`${JSON.stringify({ cacheDir, models }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`cache: ${cacheDir}\n`);
      const table = rows.map((r) => [
        r.name ?? '-',
        r.repo,
        r.variant ? `${variantDefaults(r.variant.name)?.frames ?? '?'} frames` : '',
        !r.cache ? 'not cached' : `${formatBytes(r.cache.sizeBytes)}${r.cache.complete ? '' : ' (incomplete)'}`,
      ]);
      const widths = [0, 1, 2].map((i) => Math.max(...table.map((row) => row[i].length), 4));
      for (const row of table)
        process.stdout.write(`${row.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c)).join('  ')}\n`);
      if (rows.some((r) => r.variant && !r.cache)) {
        process.stdout.write(
          'download with `svd models pull <name>` (the stabilityai repos are gated: accept the licence on the model page and set HF_TOKEN)\n',
        );
      }
    });

  models
    .command('path')
    .description('print the local directory of a cached model (no network)')
    .argument('<model>', 'registry name, repo id or directory')
    .option('--revision <rev>', 'branch, tag or commit (default: main)')
    .action((ref: string, opts: { revision?: string }) => {
      process.stdout.write(`${modelPath(ref, { revision: opts.revision })}\n`);
    });

  models
    .command('rm')
    .description('delete a model (all revisions) from the Hugging Face cache')
    .argument('<model>', 'registry name or repo id')
    .action((ref: string) => {
      const { repo, freedBytes } = removeModel(ref);
      process.stdout.write(`removed ${repo} (${formatBytes(freedBytes)} freed)\n`);
    });
}

/**
 * Progress on stderr: a redrawn line on a terminal; otherwise one line per finished file, so logs and
 * CI output stay readable.
 */
function progressBar() {
  const tty = Boolean(process.stderr.isTTY);
  let drawn = false;
  const clear = () => {
    if (drawn) process.stderr.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    update(p: PullProgress) {
      const line = formatProgressLine(p);
      if (tty) {
        clear();
        process.stderr.write(line.slice(0, Math.max(20, (process.stderr.columns ?? 120) - 1)));
        drawn = true;
        if (p.done) {
          process.stderr.write('\n');
          drawn = false;
        }
      } else if (p.done) {
        process.stderr.write(`${line}\n`);
      }
    },
    note(message: string) {
      clear();
      process.stderr.write(`${message}\n`);
    },
    finish() {
      clear();
    },
  };
}
