import type { Command } from 'commander';

// The flags main.ts declares for --help and for commander's checks, apart from the commands that
// read them: main.ts loads this at every start, the commands only when one runs.

/** The backends `--backend` takes; the first is the default. */
export const BACKENDS = ['wasm', 'reference', 'webgpu'] as const;

/** The flags of `kiln train` and of a standalone bundle's train.mjs that shape the run, not the model. */
export function runOptions(cmd: Command): Command {
  return cmd
    .option('--max-steps <n>', 'stop after n steps in total')
    .option('--no-shuffle', 'keep the file order instead of shuffling each epoch')
    .option('--init <file>', 'start from these weights (safetensors state_dict, kiln or PyTorch)')
    .option('--save <file>', 'write the trained weights (safetensors state_dict)')
    .option('--checkpoint <file>', 'checkpoint file (written on Ctrl-C and every --checkpoint-every steps)')
    .option('--checkpoint-every <n>', 'write a checkpoint every n steps')
    .option('--resume <file>', 'continue a run from its checkpoint')
    .option('--log <file>', 'write {"epoch","step","loss"} per step as JSON Lines')
    .option('--metrics-json <file>', 'write the final metrics as JSON');
}
