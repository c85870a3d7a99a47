import type { Command } from 'commander';

/**
 * Flags a PyTorch script's argparse (or another trainer) names differently: an unknown one gets
 * kiln's name in its hint, where commander's own suggestion (a near spelling) finds none.
 */
const OTHER_NAMES: Readonly<Record<string, string>> = {
  '--learning-rate': '--lr',
  '--learning_rate': '--lr',
  '--batch_size': '--batch-size',
  '--bs': '--batch-size',
  '--epoch': '--epochs',
  '--num-epochs': '--epochs',
  '--num_epochs': '--epochs',
  '--n-epochs': '--epochs',
  '--optim': '--optimizer',
  '--weight_decay': '--weight-decay',
  '--wd': '--weight-decay',
  '--device': '--backend',
  '--manual-seed': '--seed',
  '--output': '--save',
};

/**
 * Commander's usage errors in kiln's shape: `error: ...` and one `  hint:` line, its "(Did you
 * mean --x?)" moved into the hint. Installed on a program before its subcommands are made, so
 * they inherit it.
 */
export function usageErrors(cmd: Command): Command {
  return cmd.configureOutput({
    outputError: (text, write) => {
      const lines = text.trimEnd().split('\n');
      const mean = lines.findIndex((l) => /^\(Did you mean .+\?\)$/.test(l));
      const suggested = mean >= 0 ? lines.splice(mean, 1)[0]!.slice(1, -1).replace(/^Did/, 'did') : undefined;
      const unknown = /^error: unknown option '([^']+)'/.exec(lines[0] ?? '')?.[1];
      const other = unknown && OTHER_NAMES[unknown.split('=')[0]!];
      const hint = suggested ?? (other ? `kiln calls it ${other}` : undefined);
      write(`${lines.join('\n')}\n  hint: ${hint ? `${hint} (--help lists every option)` : 'run with --help for usage'}\n`);
    },
  });
}
