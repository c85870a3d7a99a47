// What `npm pack` would publish: the files an installed kiln needs and nothing of the repo's
// own tooling, and no runtime import of a package that `npm install --omit=dev` leaves out.
// scripts/check-pack.sh does the full check (pack, install from the tarball, run); it needs the
// registry and half a minute, so it is a script, not a test.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

interface Pkg {
  name: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as Pkg;

let files: string[] = [];
beforeAll(() => {
  // Runs prepack, so dist/kiln.mjs is built from the sources as they are now.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 120_000 });
  files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
});

/** The npm packages a file imports (statically, or by import() of a literal), as esbuild parses it. */
async function packagesImported(entry: string): Promise<string[]> {
  const r = await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', packages: 'external', write: false, metafile: true, logLevel: 'silent' });
  const builtin = new Set(builtinModules);
  const names = Object.values(r.metafile.inputs).flatMap((i) => i.imports.filter((m) => m.external).map((m) => m.path));
  return [...new Set(names.filter((n) => !n.startsWith('node:') && !builtin.has(n)).map((n) => (n.startsWith('@') ? n.split('/').slice(0, 2) : n.split('/').slice(0, 1)).join('/')))].sort();
}

describe('the published package', () => {
  it('is not named kiln (another author owns that name) and installs the kiln command', () => {
    expect(pkg.name).not.toBe('kiln');
    expect(pkg.bin).toEqual({ kiln: './bin/kiln.js' });
  });

  it('carries the bin, the prebuilt bundle, the sources the CLI reads at run time and the samples', () => {
    for (const f of [
      'package.json',
      'README.md',
      'bin/kiln.js',
      'dist/kiln.mjs',
      'dist/kiln.mjs.map',
      // lint type-checks model files against api.ts; compile --standalone bundles the runtime's sources.
      'src/frontend/api.ts',
      'src/runtime/standalone/node-cli.ts',
      'src/runtime/standalone/page/index.html',
      'samples/simple-cnn.ts',
    ]) {
      expect(files).toContain(f);
    }
  });

  it('carries every chunk the bundle imports, each with its source map', () => {
    // The chunks an import names, from the entry on (dist/kiln.mjs imports a command's on demand).
    const imported = new Set<string>();
    const visit = (file: string) => {
      for (const m of readFileSync(file, 'utf8').matchAll(/\bimport\s*\(?\s*(?:[^'"();]*?\bfrom\s*)?["'](\.\.?\/[^"']+)["']/g)) {
        const path = join(dirname(file), m[1]!);
        if (!imported.has(path)) {
          imported.add(path);
          visit(path);
        }
      }
    };
    visit('dist/kiln.mjs');
    expect(imported.size).toBeGreaterThan(5);
    for (const f of imported) expect(files).toEqual(expect.arrayContaining([f, `${f}.map`]));
  });

  it('leaves out tests, benchmarks, build scripts, docs and build leftovers', () => {
    // dist/: the entry, its chunks and their maps; a chunk of an older build is pruned by prepack.
    const dist = /^dist\/(kiln\.mjs|chunks\/[\w-]+\.mjs)(\.map)?$/;
    const stray = files.filter((f) => /^(test|bench|scripts|docs|node_modules|\.kiln-cache)\//.test(f) || (f.startsWith('dist/') && !dist.test(f)) || f.endsWith('.tgz'));
    expect(stray).toEqual([]);
  });

  it('imports at run time only packages that a production install brings', async () => {
    const shipped = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {})]);
    for (const entry of ['bin/kiln.js', 'dist/kiln.mjs']) {
      const missing = (await packagesImported(entry)).filter((n) => !shipped.has(n));
      expect(missing, `${entry} imports ${missing.join(', ')}, which --omit=dev leaves out`).toEqual([]);
    }
  });
});
