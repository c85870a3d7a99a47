// Dawn (the WebGPU backend) writes two warnings straight to the process's stderr from C++ when it
// opens an adapter ("Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from
// 90 to 16 ..."): harmless clamps kiln never comes near, with no toggle or callback to silence
// them, and no way for JavaScript to redirect fd 2 around the call. So a command that will open
// Dawn runs as a child whose stderr passes through this filter; everything else is untouched.
import { spawn } from 'node:child_process';

const DAWN_WARNING = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;
const PREFIX = 'Warning: maxDynamic';

/** Set in the child: its stderr is this filter, and a terminal of this many columns when the number is positive. */
export const FILTERED_ENV = 'KILN_STDERR_FILTERED';

/** Whether the command line will open a WebGPU device in this process. */
export function opensDawn(args) {
  const value = (flag) => {
    const i = args.indexOf(flag);
    if (i >= 0) return args[i + 1];
    return args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
  };
  const command = args.find((a) => !a.startsWith('-'));
  if (command === 'train' || command === 'eval') return value('--backend') === 'webgpu';
  if (command === 'bench') {
    const backends = value('--backends');
    return backends === undefined || backends.split(',').includes('webgpu');
  }
  return false;
}

/**
 * A stderr filter: complete lines pass unless they are Dawn's warning; a partial line (a
 * progress bar redrawn with \r) passes at once unless it could still become the warning.
 */
export function dawnFilter(write) {
  let pending = '';
  return {
    push(chunk) {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop();
      let out = lines.filter((l) => !DAWN_WARNING.test(l)).map((l) => `${l}\n`).join('');
      if (!(PREFIX.startsWith(pending) || pending.startsWith(PREFIX))) {
        out += pending;
        pending = '';
      }
      if (out) write(out);
    },
    flush() {
      if (pending) write(pending);
      pending = '';
    },
  };
}

/** Runs this same command as a child with Dawn's warnings taken out of its stderr; exits as it does. */
export function runFiltered(entry) {
  const tty = process.stderr.isTTY ? String(process.stderr.columns || 100) : '0';
  const child = spawn(process.execPath, [...process.execArgv, entry, ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, [FILTERED_ENV]: tty },
    // Its own process group: a terminal's Ctrl-C reaches this process alone, which passes it on
    // once (twice would be "quit at once" to the trainer).
    detached: true,
  });
  const filter = dawnFilter((s) => process.stderr.write(s));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => filter.push(d));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('close', (code, signal) => {
    filter.flush();
    process.exitCode = code ?? (signal === 'SIGINT' ? 130 : 1);
  });
}
