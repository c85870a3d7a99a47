// Built wasm modules kept between runs. Building SimpleCNN's three modules with binaryen takes
// ~0.45 s of every `kiln train`, and importing binaryen another ~0.2 s, for bytes that depend only
// on the lowered Program and how it is built: an entry is keyed by those (and the kiln that built
// it), so a run of an unchanged model reads its modules back and never loads binaryen.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import type { WasmStep } from '../../codegen/artifact.ts';
import type { MemoryLayout } from '../../codegen/wasm-simd/layout.ts';
import type { Program } from '../../ir/program.ts';
import { kilnCacheDir, kilnStamp, sha256 } from '../kiln-cache.ts';
import { writeFileAtomic } from '../output-file.ts';

/** What a module's bytes depend on besides its Program (the build options that are not experiments). */
export interface StepBuild {
  readonly threads: number;
  readonly relaxed: boolean;
  readonly layout: MemoryLayout;
}

/** Entries kept; past this the least recently used go, down to three quarters of it. */
const MAX_ENTRIES = 200;

export class StepCache {
  private readonly dir: string;

  /** The cache in the user's cache folder (src/runtime/kiln-cache.ts), or undefined when it is turned off. */
  static open(): StepCache | undefined {
    const root = kilnCacheDir();
    return root === null ? undefined : new StepCache(join(root, 'wasm'));
  }

  constructor(dir: string) {
    this.dir = dir;
  }

  key(program: Program, build: StepBuild): string {
    return sha256(`${kilnStamp()}\0${canonical({ program, build })}`);
  }

  /** The step stored under `key`, if it is there whole: a damaged or partial entry is a miss. */
  get(key: string): WasmStep | undefined {
    try {
      const meta = JSON.parse(readFileSync(this.path(key, 'json'), 'utf8')) as Omit<WasmStep, 'binary'> & { sha256: string };
      const binary = new Uint8Array(readFileSync(this.path(key, 'wasm')));
      if (sha256(binary) !== meta.sha256) return undefined;
      const now = new Date();
      utimesSync(this.path(key, 'json'), now, now);
      const { sha256: _, ...step } = meta;
      return { ...step, binary };
    } catch {
      return undefined;
    }
  }

  /**
   * Whether modules were stored from a model file with these bytes. Such a run will most likely
   * find all its modules here, so the session does not start importing binaryen on the side (which
   * takes the main thread ~0.2 s); when it guesses wrong, binaryen is imported when first needed.
   */
  builtFrom(modelBytes: Uint8Array): boolean {
    try {
      statSync(this.marker(modelBytes));
      return true;
    } catch {
      return false;
    }
  }

  markBuiltFrom(modelBytes: Uint8Array): void {
    try {
      mkdirSync(join(this.dir, 'models'), { recursive: true });
      writeFileAtomic(this.marker(modelBytes), '');
      prune(join(this.dir, 'models'), '');
    } catch {
      // as put
    }
  }

  /** Stores a step; the JSON goes last, so a run stopped half-way leaves a miss, not a wrong hit. */
  put(key: string, step: WasmStep): void {
    try {
      mkdirSync(this.dir, { recursive: true });
      const { binary, ...meta } = step;
      writeFileAtomic(this.path(key, 'wasm'), binary);
      writeFileAtomic(this.path(key, 'json'), JSON.stringify({ ...meta, sha256: sha256(binary) }));
      prune(this.dir, '.json', '.wasm');
    } catch {
      // read-only or full: build again next time
    }
  }

  private marker(modelBytes: Uint8Array): string {
    return join(this.dir, 'models', sha256(`${kilnStamp()}\0${sha256(modelBytes)}`));
  }

  private path(key: string, ext: 'json' | 'wasm'): string {
    return join(this.dir, `${key}.${ext}`);
  }
}

/** Removes the least recently used entries (`ext` files, with their `also` siblings) past MAX_ENTRIES. */
function prune(dir: string, ext: string, also?: string): void {
  const entries = readdirSync(dir).filter((f) => f.endsWith(ext));
  if (entries.length <= MAX_ENTRIES) return;
  const byAge = entries.map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs })).sort((a, b) => a.t - b.t);
  for (const { f } of byAge.slice(0, entries.length - Math.floor((MAX_ENTRIES * 3) / 4))) {
    rmSync(join(dir, f), { force: true });
    if (also) rmSync(join(dir, f.slice(0, f.length - ext.length) + also), { force: true });
  }
}

/**
 * JSON of plain data, with what JSON.stringify would merge kept apart: Maps as their entries,
 * and the numbers JSON has no form for (NaN, ±Infinity, -0) as strings.
 */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Map) return { map: [...v] };
    if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return `number:${Object.is(v, -0) ? '-0' : v}`;
    if (typeof v === 'function') throw new Error('a step-cache key must be plain data');
    return v;
  });
}
