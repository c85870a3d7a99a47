import { existsSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { BuildOptions, Plugin } from 'esbuild';
import { kilnRoot } from '../frontend/source-loc.ts';

// commander and cli-progress are CommonJS: their require() calls of Node's modules need a require in an ES module.
const NODE_BANNER = "#!/usr/bin/env node\nimport { createRequire as kilnRequire } from 'node:module';\nconst require = kilnRequire(import.meta.url);";

const STANDALONE = join(kilnRoot, 'src', 'runtime', 'standalone');
const RUNTIME = join(kilnRoot, 'src', 'runtime') + sep;

/**
 * The JavaScript of a standalone bundle, built from kiln's sources with esbuild:
 * kiln-runtime.mjs (the runtime, for Node and pages), train.mjs (Node's command line), and the
 * page's app.js and worker.js, plus its static files. Each file but the runtime imports the
 * runtime from ./kiln-runtime.mjs instead of carrying a copy of it.
 */
export async function buildRuntimeFiles(): Promise<Map<string, Uint8Array>> {
  const esbuild = await import('esbuild');
  const out = new Map<string, Uint8Array>();
  // Dawn for Node is the user's to install: the runtime imports it only when asked for webgpu in Node.
  const common: BuildOptions & { write: false } = { external: ['webgpu'], bundle: true, format: 'esm', target: 'es2022', write: false, minify: true, legalComments: 'none', logLevel: 'silent', charset: 'utf8' };
  const runtime = await esbuild.build({ ...common, entryPoints: [join(STANDALONE, 'index.ts')], platform: 'neutral', external: ['node:*', 'webgpu'] });
  out.set('kiln-runtime.mjs', runtime.outputFiles[0]!.contents);
  const shared = [shareRuntime()];
  const cli = await esbuild.build({ ...common, entryPoints: [join(STANDALONE, 'node-cli.ts')], platform: 'node', target: 'node20', plugins: shared, banner: { js: NODE_BANNER } });
  out.set('train.mjs', cli.outputFiles[0]!.contents);
  for (const name of ['app', 'worker']) {
    const page = await esbuild.build({ ...common, entryPoints: [join(STANDALONE, 'page', `${name}.ts`)], platform: 'browser', plugins: shared });
    out.set(`${name}.js`, page.outputFiles[0]!.contents);
  }
  for (const name of ['index.html', 'style.css']) out.set(name, readFileSync(join(STANDALONE, 'page', name)));
  return out;
}

/**
 * Resolves kiln's runtime modules to ./kiln-runtime.mjs (which re-exports what other files take
 * from them, src/runtime/standalone/index.ts). Node's file wrappers (*-file.ts) and the
 * page's and the command line's own modules stay in the file being built.
 */
function shareRuntime(): Plugin {
  return {
    name: 'kiln-runtime',
    setup(build) {
      build.onResolve({ filter: /\.ts$/ }, (args) => {
        if (!args.importer) return undefined;
        const path = join(args.resolveDir, args.path);
        if (!existsSync(path)) return undefined;
        const rel = relative(RUNTIME, path);
        const inRuntime = !rel.startsWith('..') && !/-file\.ts$/.test(rel) && rel !== 'output-file.ts' && !rel.startsWith(`standalone${sep}page${sep}`) && rel !== join('standalone', 'node-cli.ts');
        const isError = path === join(kilnRoot, 'src', 'ir', 'errors.ts');
        return inRuntime || isError ? { path: './kiln-runtime.mjs', external: true } : undefined;
      });
    },
  };
}
