// The differential fuzzer's command line: npm run fuzz -- [--cases N] [--seed S] [--backends LIST] [--model FILE] [--verbose]
// Case k of a run is the model generated from seed S + k (test/fuzz/generate.ts); a failing case
// leaves its model file in the temp folder and prints it, with the first mismatch per backend.
// --model FILE checks one model file instead (a reproducer, or any model of your own), its data
// drawn from its `training.seed`. Exit status 1 when any case fails.
import { parseArgs } from 'node:util';
import { BACKEND_NAMES, checkModelFile, formatFailure, openBackends, runCase, type BackendName } from './check.ts';
import { readFileSync } from 'node:fs';

const USAGE = `usage: npm run fuzz -- [--cases N] [--seed S] [--backends ${BACKEND_NAMES.join(',')}] [--model FILE] [--verbose]`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: '20' },
      seed: { type: 'string', default: '1' },
      backends: { type: 'string', default: BACKEND_NAMES.join(',') },
      model: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return console.log(USAGE), 0;
  const cases = Number(values.cases);
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(cases) || cases < 1 || !Number.isSafeInteger(seed) || seed < 0) return console.error(`--cases must be a positive integer and --seed a non-negative one\n${USAGE}`), 2;
  const names = values.backends.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(BACKEND_NAMES as readonly string[]).includes(n));
  if (unknown.length || names.length === 0) return console.error(`unknown backend ${unknown.join(', ') || '(none given)'}: choose from ${BACKEND_NAMES.join(', ')}`), 2;

  const { backends, skipped } = await openBackends(names as BackendName[]);
  for (const s of skipped) console.warn(`skipped: ${s}`);
  console.log(`backends: ${backends.map((b) => b.name).join(', ')} against the reference backend running the graph`);
  const started = performance.now();
  const failed: number[] = [];
  try {
    if (values.model) {
      const r = await checkModelFile(values.model, { backends });
      if (!r.ok) {
        console.log(formatFailure(0, values.model, readFileSync(values.model, 'utf8'), r).replace('FAIL case 0: reproducer', 'FAIL'));
        failed.push(0);
      } else console.log(`ok ${values.model}`);
    } else {
      for (let k = 0; k < cases; k++) {
        const r = await runCase(seed + k, { backends });
        const time = Object.entries(r.ms).map(([b, t]) => `${b} ${(t / 1000).toFixed(1)}s`).join(', ');
        if (r.ok) console.log(`ok   case ${r.seed} (${k + 1}/${cases}) ${r.describe}${values.verbose ? ` [${time}]` : ''}`);
        else {
          failed.push(r.seed);
          console.log(r.report);
        }
      }
    }
  } finally {
    for (const b of backends) await b.close();
  }
  const total = values.model ? 1 : cases;
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(failed.length ? `${failed.length} of ${total} failed (seeds ${failed.join(', ')}) in ${secs}s` : `${total} passed in ${secs}s`);
  return failed.length ? 1 : 0;
}

// Exit at once: a wasm backend's workers or the GPU device would keep the process alive.
process.exit(await main());
