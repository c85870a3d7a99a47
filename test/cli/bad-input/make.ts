/**
 * Makers of bad inputs for the corpus (cases.ts): each takes good files the corpus prepared once
 * (a tiny IDX dataset, a bundle, weights, a checkpoint) and writes a damaged copy into a case's
 * own folder, so the damage is visible in one line of code and no binary fixture is committed.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

/** The shared, valid inputs every case may read (paths relative to the corpus's working directory). */
export const SHARED = {
  /** 64 training and 20 test images of MNIST, gzipped IDX. */
  data: 'shared/data',
  models: 'shared/models',
  /** samples/mlp.ts compiled by `kiln compile`. */
  bundle: 'shared/mlp.kiln',
  /** mlp's weights after one step (kiln train --save). */
  weights: 'shared/mlp.safetensors',
  /** mlp's checkpoint after one step (kiln train --checkpoint). */
  checkpoint: 'shared/mlp.checkpoint.safetensors',
  /** SimpleCNN's (test/fixtures/models/good.ts) checkpoint after one step: another model's. */
  otherCheckpoint: 'shared/good.checkpoint.safetensors',
} as const;

export const model = (name: string) => `${SHARED.models}/${name}.ts`;

/** An IDX file's bytes: the magic, one big-endian u32 per dimension, the data. */
export function idx(magic: number, dims: number[], data: Uint8Array | number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

export type IdxName = 'train-images-idx3-ubyte' | 'train-labels-idx1-ubyte' | 't10k-images-idx3-ubyte' | 't10k-labels-idx1-ubyte';

/**
 * A copy of the shared dataset in `dir` with one file's raw (gunzipped) bytes replaced by what
 * `edit` returns; written gzipped like the others unless `raw`.
 */
export function dataWith(cwd: string, dir: string, name: IdxName, edit: (bytes: Buffer) => Buffer, raw = false): void {
  mkdirSync(join(cwd, dir), { recursive: true });
  for (const f of readdirSync(join(cwd, SHARED.data))) if (!f.startsWith(name)) copyFileSync(join(cwd, SHARED.data, f), join(cwd, dir, f));
  const bytes = edit(gunzipSync(readFileSync(join(cwd, SHARED.data, `${name}.gz`))));
  if (raw) writeFileSync(join(cwd, dir, name), bytes);
  else writeFileSync(join(cwd, dir, `${name}.gz`), gzipSync(bytes));
}

/** A safetensors file's parts: its JSON header and its data bytes. */
export function splitSafetensors(bytes: Buffer): { header: Record<string, any>; data: Buffer } {
  const len = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + len).toString('utf8')), data: bytes.subarray(8 + len) };
}

/** Bytes of a safetensors file with this header (unpadded, as any writer may) and data. */
export function joinSafetensors(header: Record<string, unknown>, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

/** A copy of a safetensors file with its header and data edited. */
export function safetensorsWith(cwd: string, from: string, to: string, edit: (st: { header: Record<string, any>; data: Buffer }) => void): void {
  const st = splitSafetensors(readFileSync(join(cwd, from)));
  st.data = Buffer.from(st.data);
  edit(st);
  writeFileSync(join(cwd, to), joinSafetensors(st.header, st.data));
}

/** Overwrites tensor `name`'s f32 element `i` in a split safetensors file. */
export function setF32(st: { header: Record<string, any>; data: Buffer }, name: string, i: number, v: number): void {
  st.data.writeFloatLE(v, st.header[name].data_offsets[0] + 4 * i);
}

// The bundle's checksum as src/frontend/bundle.ts computes it: JSON with non-finite numbers as strings.
const writeNumber = (_: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v);
const readNumber = (_: string, v: unknown) => (typeof v === 'string' && ['Infinity', '-Infinity', 'NaN'].includes(v) ? Number(v) : v);

/**
 * A copy of the shared bundle with its body edited; `resign` recomputes the SHA-256, as someone
 * who edits a bundle on purpose (or a kiln that wrote a wrong program) would leave it.
 */
export function bundleWith(cwd: string, to: string, edit: (b: Record<string, any>) => void, resign: boolean): void {
  const { sha256, ...body } = JSON.parse(readFileSync(join(cwd, SHARED.bundle), 'utf8'), readNumber) as Record<string, any>;
  edit(body);
  const sum = resign ? createHash('sha256').update(JSON.stringify(body, writeNumber)).digest('hex') : sha256;
  writeFileSync(join(cwd, to), JSON.stringify({ ...body, sha256: sum }, writeNumber));
}

/**
 * CIFAR-10's binary format: records of one label byte and 3072 pixel bytes (1024 red, 1024
 * green, 1024 blue), `count` records per file.
 */
export function cifarBatch(count: number): Buffer {
  const out = Buffer.alloc(count * 3073);
  for (let i = 0; i < count; i++) {
    out[i * 3073] = i % 10;
    for (let j = 1; j < 3073; j++) out[i * 3073 + j] = (i * 31 + j) % 256;
  }
  return out;
}

/** A CIFAR-10 folder of 4 records per file, `over` replacing any file's bytes. */
export function cifar10Dir(dir: string, over: Record<string, Uint8Array> = {}): void {
  for (const f of ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin']) writeFileSync(join(dir, f), over[f] ?? cifarBatch(4));
}

/** CIFAR-100's binary format: records of a coarse and a fine label byte, then 3072 pixel bytes. */
export function cifar100Records(count: number): Buffer {
  const out = Buffer.alloc(count * 3074);
  for (let i = 0; i < count; i++) {
    out[i * 3074] = i % 20;
    out[i * 3074 + 1] = i % 100;
    for (let j = 2; j < 3074; j++) out[i * 3074 + j] = (i * 31 + j) % 256;
  }
  return out;
}
