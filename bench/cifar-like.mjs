#!/usr/bin/env node
// Writes a CIFAR-10-format folder of noise images (data_batch_1..5.bin, test_batch.bin) for
// benchmarking CIFAR models where the real data set cannot be downloaded: a step's time does not
// depend on the pixel values. Usage: node bench/cifar-like.mjs DIR [RECORDS_PER_BATCH]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, perBatch = '256'] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: node bench/cifar-like.mjs DIR [RECORDS_PER_BATCH]\n');
  process.exit(1);
}
let s = 12345;
const next = () => {
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>>= 0);
};
const records = (n) => {
  const b = Buffer.alloc(n * 3073);
  for (let i = 0; i < n; i++) {
    b[i * 3073] = next() % 10;
    for (let p = 1; p < 3073; p++) b[i * 3073 + p] = next() & 255;
  }
  return b;
};
mkdirSync(dir, { recursive: true });
for (let k = 1; k <= 5; k++) writeFileSync(join(dir, `data_batch_${k}.bin`), records(Number(perBatch)));
writeFileSync(join(dir, 'test_batch.bin'), records(1000));
process.stdout.write(`wrote ${dir}: 5 × ${perBatch} training records, 1000 test records\n`);
