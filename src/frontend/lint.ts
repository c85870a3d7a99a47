// Static checks on a model file, run before the file is executed: the mistakes that tracing would
// report late and badly (or not at all) are caught here with a place and a hint.
//
// Types: the model is type-checked against this repo's own api.ts ('kiln' is mapped to it with
// `paths`) and ES2022's standard library without the DOM (the DOM lib alone costs ~400 ms to
// load; ES2022's costs ~200 ms, the price of reporting the checker's own errors: a model that
// calls `xs.map` or `Math.sqrt` must type-check). The checker's errors are reported after kiln's
// own findings, which say more about tracing (a tensor in an `if`, say). Where 'kiln' does not
// resolve (no api.ts, or no Tensor export) a syntactic fallback decides what is a tensor:
// annotations, `.forward()` results, `F.*` calls and tensor method calls, and the checker's
// errors are not reported (without kiln's types they would be noise). In typed mode the fallback
// also covers expressions whose type is an error.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve as resolvePath, sep } from 'node:path';
import type { Project, SourceFile, ts as TS } from 'ts-morph';
import { KilnError, type SourceLoc } from '../ir/errors.ts';
import { F, nn } from './api.ts';
import { closest } from './closest.ts';
import { lintPassed, recordLintPass } from './lint-cache.ts';
import { kilnRoot } from './source-loc.ts';
import { evalWorkerSource } from '../runtime/wasm/threads-node.ts';

/**
 * What `new nn.X(...)` and `F.x(...)` may name: read from the API objects themselves, so a layer
 * added to api.ts is known here at once.
 */
export const KNOWN = {
  layers: Object.keys(nn).sort(),
  functions: Object.keys(F).sort(),
};

/** Methods and properties that read a tensor's values: never defined during tracing. */
const DATA_READS = new Set(['item', 'data', 'dataSync', 'tolist', 'numpy', 'arraySync', 'array']);
/** Tensor members whose result is not a tensor (shape queries, text). */
const NOT_TENSOR = new Set([...DATA_READS, 'shape', 'ndim', 'size', 'numel', 'dim', 'dtype', 'toString']);
const STATIC_GRAPH = 'kiln traces a static graph, so values are not known at compile time';

// From the package root, so the bundled CLI in dist/ type-checks against the same file.
const DEFAULT_API = join(kilnRoot, 'src', 'frontend', 'api.ts');

export interface LintOptions {
  /**
   * The file 'kiln' resolves to for type checking; null checks syntactically only. Default: the
   * api.ts beside this file, if present.
   */
  api?: string | null;
  /** A cache folder (lint-cache.ts): an unchanged file that passed before is not checked again. */
  cache?: string | null;
  /** Called just before the checks run, when the cache does not already know the file passed. */
  onRun?: () => void;
}

/** Lints a model file on disk and throws the first problem found as a KilnError. */
export async function lintModelFile(path: string, options: LintOptions = {}): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new KilnError('no-file', `cannot read the model file: ${(e as Error).message}`, undefined, 'check the path to the model file');
  }
  const abs = resolvePath(path);
  const cacheKey = options.cache && options.api === undefined ? options.cache : null;
  if (cacheKey && lintPassed(cacheKey, abs, text)) return;
  options.onRun?.();
  const { problems, localFiles } = await lint(path, text, options);
  if (problems.length > 0) throw problems[0];
  if (cacheKey) recordLintPass(cacheKey, abs, text, localFiles);
}

/** What a lint worker posts: the verdict, a KilnError's fields, or a crash's text. */
type WorkerVerdict = { ok: true } | { error: { code: string; message: string; loc?: SourceLoc; hint?: string } } | { crash: string };

/**
 * lintModelFile on a worker thread, so that the check (a second or more of TypeScript on a model
 * it has not seen pass) overlaps what the caller does next: tracing, building the wasm modules.
 * The promise settles with the verdict; the cache is consulted here first, so an unchanged model
 * that passed starts no worker. Where this module is not a built chunk (the sources under a test
 * runner, which a plain worker cannot load) the check runs on this thread instead.
 */
export async function lintModelFileAside(path: string, options: { cache: string | null; onRun?: () => void }): Promise<void> {
  const here = import.meta.url;
  if (!here.endsWith('.mjs') && !here.endsWith('.js')) return lintModelFile(path, options);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    // The worker's own read reports it, as lintModelFile does.
    text = '';
  }
  if (options.cache && text && lintPassed(options.cache, resolvePath(path), text)) return;
  options.onRun?.();
  const { Worker } = await import('node:worker_threads');
  const verdict = await new Promise<WorkerVerdict>((resolve) => {
    const worker = new Worker(evalWorkerSource(lintWorker), { eval: true, workerData: { url: here, path, cache: options.cache } });
    worker.once('message', resolve);
    worker.once('error', (e) => resolve({ crash: e.stack ?? String(e) }));
    worker.once('exit', (code) => resolve({ crash: `the lint worker exited with code ${code} before its verdict` }));
  });
  if ('ok' in verdict) return;
  if ('error' in verdict) throw new KilnError(verdict.error.code, verdict.error.message, verdict.error.loc, verdict.error.hint);
  throw new Error(verdict.crash);
}

/** The lint worker's program (see evalWorkerSource): this very chunk imported again, its check run, the verdict posted. */
function lintWorker({ parentPort, workerData }: typeof import('node:worker_threads')): void {
  const { url, path, cache } = workerData as { url: string; path: string; cache: string | null };
  import(url)
    .then((m: typeof import('./lint.ts')) => m.lintModelFile(path, { cache }))
    .then(
      () => parentPort!.postMessage({ ok: true }),
      (e: { name?: string; code?: string; message?: string; loc?: unknown; hint?: string; stack?: string }) =>
        parentPort!.postMessage(e?.name === 'KilnError' ? { error: { code: e.code, message: e.message, loc: e.loc, hint: e.hint } } : { crash: String(e?.stack ?? e) }),
    );
}

/**
 * All problems in a model's source, the most fundamental first: syntax errors (alone: nothing
 * else is reliable then), then a missing model class or forward, then kiln's own findings in
 * source order, then the type checker's errors. `path` is used for locations and for resolving
 * the file's own relative imports.
 */
export async function lintModelSource(path: string, text: string, options: LintOptions = {}): Promise<KilnError[]> {
  return (await lint(path, text, options)).problems;
}

async function lint(path: string, text: string, options: LintOptions): Promise<{ problems: KilnError[]; localFiles: string[] }> {
  const { ts } = tsMorph();
  const api = options.api === undefined ? (existsSync(DEFAULT_API) ? DEFAULT_API : null) : options.api;
  const project = await projectFor(api);
  const source = project.createSourceFile(resolvePath(path), text, { overwrite: true });
  let local: SourceFile[] = [];
  try {
    const program = project.getProgram().compilerObject;
    local = importedUserFiles(source);
    const model = source.compilerNode;
    return { problems: check(ts, model, [model, ...local.map((f) => f.compilerNode)], program, path, api !== null), localFiles: local.map((f) => f.getFilePath()) };
  } finally {
    // The files the model imports leave the long-lived project with it: kept, the next lint
    // would see their old text, not the user's edits.
    for (const f of [source, ...local]) project.removeSourceFile(f);
  }
}

/** The user's files that `model` imports, directly or through each other. */
function importedUserFiles(model: SourceFile): SourceFile[] {
  const seen = new Set<SourceFile>([model]);
  const todo = [model];
  for (let f = todo.pop(); f; f = todo.pop()) {
    for (const g of f.getReferencedSourceFiles()) {
      if (!seen.has(g) && isUserFile(g.getFilePath())) {
        seen.add(g);
        todo.push(g);
      }
    }
  }
  seen.delete(model);
  return [...seen];
}

/** A file of the user's: not kiln's, not a package's, not a lib. */
function isUserFile(name: string): boolean {
  return !/\.d\.[cm]?ts$/.test(name) && !name.startsWith(join(kilnRoot, 'src') + sep) && !name.includes(`${sep}node_modules${sep}`) && !name.startsWith('/__kiln_lint__/');
}

function check(ts: typeof TS, sf: TS.SourceFile, local: TS.SourceFile[], program: TS.Program, path: string, typed: boolean): KilnError[] {
  const at = (node: TS.Node | number): SourceLoc => {
    const pos = typeof node === 'number' ? node : node.getStart(sf);
    const lc = sf.getLineAndCharacterOfPosition(pos);
    return { file: path, line: lc.line + 1, col: lc.character + 1 };
  };

  const syntax = program.getSyntacticDiagnostics(sf);
  if (syntax.length > 0) {
    return syntax.map(
      (d) =>
        new KilnError('syntax', `syntax error: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`, at(d.start ?? 0), 'fix the TypeScript syntax; kiln can only compile a model file that parses'),
    );
  }
  const own = new Checker(ts, sf, program.getTypeChecker(), typed, at).run();
  return typed ? [...own, ...typeErrors(ts, program, sf, local, path, own)] : own;
}

/**
 * The checker's errors in the model file and in the local files it imports, each at its line.
 * A line kiln already reported is skipped: its own message says more. Imports of packages other
 * than kiln that have no types are not errors here (the bundler resolves them at run time).
 */
function typeErrors(ts: typeof TS, program: TS.Program, model: TS.SourceFile, local: TS.SourceFile[], path: string, own: KilnError[]): KilnError[] {
  const reported = new Set(own.map((p) => p.loc?.line));
  const modelDir = dirname(model.fileName);
  const out: KilnError[] = [];
  for (const f of local) {
    const name = f === model ? path : relative(process.cwd(), f.fileName) || relative(modelDir, f.fileName);
    for (const d of program.getSemanticDiagnostics(f)) {
      if (d.category !== ts.DiagnosticCategory.Error || d.start === undefined) continue;
      if (UNTYPED_IMPORT_CODES.has(d.code) && !isLocalOrKilnImport(f.text, d.start)) continue;
      const lc = f.getLineAndCharacterOfPosition(d.start);
      if (f === model && reported.has(lc.line + 1)) continue;
      out.push(
        new KilnError(
          'type-error',
          `type error: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`,
          { file: name, line: lc.line + 1, col: lc.character + 1 },
          'fix the type error: kiln checks model files with the TypeScript compiler against its API (a line that is meant to be so can say `// @ts-expect-error` above it)',
        ),
      );
    }
  }
  return out;
}

/** "Cannot find module" and "could not find a declaration file for module". */
const UNTYPED_IMPORT_CODES = new Set([2307, 7016]);

function isLocalOrKilnImport(text: string, start: number): boolean {
  const spec = /^['"]([^'"]*)['"]/.exec(text.slice(start))?.[1] ?? '';
  return spec === 'kiln' || spec.startsWith('.') || spec.startsWith('/');
}

// One Project per api path, kept for the process: lib and api files are parsed once, so a second
// lint (tests, watch) costs only the model file. The CLI lints one model per process.
const projects = new Map<string | null, Promise<Project>>();

/**
 * ts-morph, loaded on first use. require(), not import(): an ES import of a CommonJS module first
 * scans its source for named exports, and for ts-morph that means TypeScript's 9 MB, about 150 ms
 * of the ~1 s before `kiln train` could say anything (measured with --cpu-prof).
 */
function tsMorph(): typeof import('ts-morph') {
  return createRequire(import.meta.url)('ts-morph') as typeof import('ts-morph');
}

function projectFor(api: string | null): Promise<Project> {
  let p = projects.get(api);
  if (!p) {
    p = Promise.resolve(tsMorph()).then(({ Project, ts }) => {
      const project = new Project({
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.ESNext,
          moduleResolution: ts.ModuleResolutionKind.Bundler,
          allowImportingTsExtensions: true,
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          lib: ['lib.es2022.d.ts'],
          types: [],
          ...(api ? { paths: { kiln: [api] } } : {}),
        },
        skipAddingFilesFromTsConfig: true,
        skipFileDependencyResolution: true,
      });
      project.createSourceFile(GLOBALS_PATH, GLOBALS);
      return project;
    });
    projects.set(api, p);
  }
  return p;
}

// What a model may use from the host beside ES2022: printing while it is built or traced.
const GLOBALS_PATH = '/__kiln_lint__/globals.d.ts';
const GLOBALS = `
interface Console { log(...data: any[]): void; info(...data: any[]): void; warn(...data: any[]): void; error(...data: any[]): void; debug(...data: any[]): void; table(data: any): void; }
declare var console: Console;
`;

type ClassNode = TS.ClassDeclaration | TS.ClassExpression;

class Checker {
  private readonly problems: KilnError[] = [];
  private readonly structural: KilnError[] = [];
  /** The Tensor and Module class symbols, when 'kiln' resolves (typed mode). */
  private tensorSymbol?: TS.Symbol;
  private moduleSymbol?: TS.Symbol;
  /** Every `x = expr` in the file, by the symbol of x: what the syntactic fallback follows. */
  private readonly assignments = new Map<TS.Symbol, TS.Expression[]>();
  private readonly tensorMemo = new Map<TS.Node, boolean>();
  private readonly symbolMemo = new Map<TS.Symbol, boolean>();

  constructor(
    private readonly ts: typeof TS,
    private readonly sf: TS.SourceFile,
    private readonly checker: TS.TypeChecker,
    private readonly typed: boolean,
    private readonly at: (node: TS.Node | number) => SourceLoc,
  ) {}

  run(): KilnError[] {
    this.collectImports();
    this.checkModelClass();
    this.walk(this.sf);
    const seen = new Set<string>();
    const rest = this.problems
      .sort((a, b) => a.loc!.line - b.loc!.line || a.loc!.col - b.loc!.col)
      .filter((p) => {
        const key = `${p.code}:${p.loc!.line}:${p.loc!.col}`;
        return !seen.has(key) && (seen.add(key), true);
      });
    return [...this.structural, ...rest];
  }

  // ---- imports ----

  /** In typed mode, kiln's Tensor and Module classes, as the checker knows them. */
  private collectImports(): void {
    const ts = this.ts;
    if (!this.typed) return;
    const decl = this.sf.statements.find((st): st is TS.ImportDeclaration => ts.isImportDeclaration(st) && isKilnImport(ts, st));
    const kiln = decl && this.checker.getSymbolAtLocation(decl.moduleSpecifier);
    if (!kiln) return;
    const exports = this.checker.getExportsOfModule(kiln);
    const classOf = (name: string): TS.Symbol | undefined => {
      let s = exports.find((e) => e.name === name);
      if (!s) return undefined;
      if (s.flags & ts.SymbolFlags.Alias) s = this.checker.getAliasedSymbol(s);
      const t = this.checker.getDeclaredTypeOfSymbol(s);
      return t.flags & ts.TypeFlags.Any ? undefined : (t.getSymbol() ?? s);
    };
    this.tensorSymbol = classOf('Tensor');
    this.moduleSymbol = classOf('Module');
  }

  /**
   * Whether `e` names the kiln export `name` ('*': the module namespace): `Module`, an alias of
   * it, `kiln.Module`, in this file or in a local file the model imports. By the import itself,
   * so it works without types; with types, also through re-exports.
   */
  private isKiln(e: TS.Node, name: string): boolean {
    const ts = this.ts;
    while (ts.isParenthesizedExpression(e)) e = e.expression;
    if (ts.isPropertyAccessExpression(e) || ts.isQualifiedName(e)) {
      const [left, right] = ts.isPropertyAccessExpression(e) ? [e.expression, e.name] : [e.left, e.right];
      return right.text === name && this.isKiln(left, '*');
    }
    if (!ts.isIdentifier(e)) return false;
    const s = this.checker.getSymbolAtLocation(e);
    const d = s?.declarations?.[0];
    if (d && ts.isImportSpecifier(d)) {
      if ((d.propertyName ?? d.name).text === name && isKilnImport(ts, d.parent.parent.parent)) return true;
    } else if (d && ts.isNamespaceImport(d)) {
      if (name === '*' && isKilnImport(ts, d.parent.parent)) return true;
    }
    const want = name === 'Module' ? this.moduleSymbol : name === 'Tensor' ? this.tensorSymbol : undefined;
    if (!want || !s) return false;
    const target = s.flags & ts.SymbolFlags.Alias ? this.checker.getAliasedSymbol(s) : s;
    return target === want || this.checker.getDeclaredTypeOfSymbol(target).getSymbol() === want;
  }

  // ---- the model class ----

  private checkModelClass(): void {
    const ts = this.ts;
    const sf = this.sf;
    let exportNode: TS.Node | undefined;
    let cls: ClassNode | undefined;
    for (const st of sf.statements) {
      if (ts.isClassDeclaration(st) && hasModifier(ts, st, ts.SyntaxKind.DefaultKeyword)) {
        exportNode = st;
        cls = st;
      } else if (ts.isFunctionDeclaration(st) && hasModifier(ts, st, ts.SyntaxKind.DefaultKeyword)) {
        exportNode = st;
      } else if (ts.isExportAssignment(st) && !st.isExportEquals) {
        exportNode = st;
        cls = this.classOf(st.expression);
      } else if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
        // `export { Net as default }`, and re-exports: `export { default } from './net.ts'`.
        const spec = st.exportClause.elements.find((e) => e.name.text === 'default');
        if (spec) {
          exportNode = spec;
          cls = this.classOf(spec.propertyName && ts.isIdentifier(spec.propertyName) ? spec.propertyName : spec.name);
        }
      }
    }
    const hint = "write `export default class Net extends Module { ... }` with `import { Module } from 'kiln'`";
    if (!exportNode) {
      this.structural.push(new KilnError('no-default-module', 'the model file has no default export; kiln needs the model class as the default export', this.at(0), hint));
      return;
    }
    const chain = cls && this.chain(cls);
    if (!cls || chain?.end === 'none') {
      const what = cls ? `class \`${cls.name?.text ?? '(anonymous)'}\` does not extend Module` : 'is not a class';
      this.structural.push(new KilnError('no-default-module', `the default export ${what}; kiln needs a class extending Module from 'kiln'`, this.at(exportNode), hint));
      return;
    }
    if (chain?.end === 'module' && !this.hasForward(chain.classes)) {
      const name = cls.name?.text ?? 'the model class';
      this.structural.push(
        new KilnError('no-forward', `\`${name}\` has no forward method; kiln calls forward(input) to trace the model`, this.at(cls.name ?? cls), 'add `forward(x: Tensor): Tensor { ... }` to the class'),
      );
    }
  }

  /** The class an expression or identifier stands for, following imports and aliases. */
  private classOf(e: TS.Node): ClassNode | undefined {
    const ts = this.ts;
    if (ts.isParenthesizedExpression(e)) return this.classOf(e.expression);
    if (ts.isClassExpression(e)) return e;
    let s = this.checker.getSymbolAtLocation(e);
    if (s && s.flags & ts.SymbolFlags.Alias) s = this.checker.getAliasedSymbol(s);
    for (const d of s?.declarations ?? []) {
      if (ts.isClassDeclaration(d) || ts.isClassExpression(d)) return d;
      if (ts.isVariableDeclaration(d) && d.initializer && ts.isClassExpression(skipParens(ts, d.initializer))) return skipParens(ts, d.initializer) as TS.ClassExpression;
    }
    return undefined;
  }

  private baseOf(cls: ClassNode): TS.ExpressionWithTypeArguments | undefined {
    const ext = cls.heritageClauses?.find((h) => h.token === this.ts.SyntaxKind.ExtendsKeyword);
    return ext?.types[0];
  }

  /**
   * The classes from `cls` up to (not including) kiln's Module, and how the chain ends: at
   * Module, at a class with no base, or somewhere the linter cannot see (a base from a package,
   * a mixin call), where it gives the benefit of the doubt.
   */
  private chain(cls: ClassNode): { classes: ClassNode[]; end: 'module' | 'none' | 'unknown' } {
    const classes: ClassNode[] = [];
    for (let c: ClassNode | undefined = cls; c; ) {
      if (classes.includes(c)) return { classes, end: 'none' };
      classes.push(c);
      const base = this.baseOf(c)?.expression;
      if (!base) return { classes, end: 'none' };
      if (this.isKiln(base, 'Module')) return { classes, end: 'module' };
      c = this.classOf(base);
    }
    return { classes, end: 'unknown' };
  }

  private hasForward(classes: ClassNode[]): boolean {
    const ts = this.ts;
    return classes.some((c) =>
      c.members.some((m) => m.name !== undefined && (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name)) && m.name.text === 'forward' && !ts.isIndexSignatureDeclaration(m)),
    );
  }

  // ---- the body ----

  private walk(node: TS.Node): void {
    const ts = this.ts;
    if (ts.isIfStatement(node) || ts.isWhileStatement(node) || ts.isDoStatement(node)) this.checkCondition(node.expression, ts.isIfStatement(node) ? 'if' : ts.isWhileStatement(node) ? 'while' : 'do ... while');
    else if (ts.isForStatement(node) && node.condition) this.checkCondition(node.condition, 'for');
    else if (ts.isConditionalExpression(node)) this.checkCondition(node.condition, '?:');
    else if (ts.isSwitchStatement(node)) this.checkCondition(node.expression, 'switch');
    else if (ts.isPrefixUnaryExpression(node) && node.operator === ts.SyntaxKind.ExclamationToken) this.checkOperand(node.operand, '!');
    else if (ts.isBinaryExpression(node)) this.checkBinary(node);
    else if (ts.isPropertyAccessExpression(node) && this.isKiln(node.expression, 'nn')) this.checkKnown(node.name, 'nn.', 'layer', KNOWN.layers);
    else if (ts.isPropertyAccessExpression(node) && this.isKiln(node.expression, 'F')) this.checkKnown(node.name, 'F.', 'function', KNOWN.functions);
    else if (ts.isPropertyAccessExpression(node) && DATA_READS.has(node.name.text) && this.isTensor(node.expression)) {
      const read = ts.isCallExpression(node.parent) && node.parent.expression === node ? node.parent : node;
      this.report('tensor-control-flow', read, `${this.where(node)} reads tensor values (\`${this.snippet(read)}\`); ${STATIC_GRAPH}`, 'keep the computation in tensor operations (F.*, x.view, ...) so it stays in the graph; read values only from the outputs after training');
    } else if (ts.isElementAccessExpression(node) && this.isTensor(node.expression)) {
      this.report('tensor-control-flow', node, `${this.where(node)} reads tensor values (\`${this.snippet(node)}\`); ${STATIC_GRAPH}`, 'index with tensor operations (x.view, x.sum(dim), ...) instead of reading elements with [...]');
    }
    ts.forEachChild(node, (c) => this.walk(c));
  }

  /** `nn.X` and `F.x`, wherever they appear (`new nn.X(...)`, `F.x(...)`, `xs.map(F.x)`). */
  private checkKnown(name: TS.MemberName, prefix: string, kind: string, known: readonly string[]): void {
    const got = name.text;
    if (known.includes(got)) return;
    const best = closest(got, known);
    const hint = best ? `did you mean ${prefix}${best}?` : `kiln knows ${known.map((k) => prefix + k).join(', ')}`;
    this.report('unknown-layer', name, `\`${prefix}${got}\` is not a ${kind} kiln knows`, hint);
  }

  /** A condition that is itself a tensor; `&&`, `||` and `!` inside it are checked operand by operand. */
  private checkCondition(cond: TS.Expression, what: string): void {
    const ts = this.ts;
    const e = skipParens(ts, cond);
    if (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.ExclamationToken) return;
    if (ts.isBinaryExpression(e) && isLogical(ts, e.operatorToken.kind)) return;
    if (this.isTensor(e)) {
      const subject = what === 'switch' ? '`switch` value' : `\`${what}\` condition`;
      this.report('tensor-control-flow', e, `${subject} depends on tensor values (\`${this.snippet(e)}\`); ${STATIC_GRAPH}`, CONTROL_HINT);
    }
  }

  private checkOperand(operand: TS.Expression, op: string): void {
    const e = skipParens(this.ts, operand);
    if (this.isTensor(e)) {
      this.report('tensor-control-flow', e, `\`${op}\` on a tensor depends on its values (\`${this.snippet(e)}\`); ${STATIC_GRAPH}`, CONTROL_HINT);
    }
  }

  private checkBinary(node: TS.BinaryExpression): void {
    const ts = this.ts;
    const k = node.operatorToken.kind;
    if (isLogical(ts, k)) {
      this.checkOperand(node.left, node.operatorToken.getText(this.sf));
      this.checkOperand(node.right, node.operatorToken.getText(this.sf));
    } else if (k === ts.SyntaxKind.LessThanToken || k === ts.SyntaxKind.GreaterThanToken || k === ts.SyntaxKind.LessThanEqualsToken || k === ts.SyntaxKind.GreaterThanEqualsToken) {
      // `x.sum() > 0` compiles (JS coerces objects) but compares values that tracing never has.
      for (const side of [node.left, node.right]) {
        const e = skipParens(ts, side);
        if (this.isTensor(e)) {
          this.report('tensor-control-flow', e, `comparison \`${node.operatorToken.getText(this.sf)}\` depends on tensor values (\`${this.snippet(e)}\`); ${STATIC_GRAPH}`, CONTROL_HINT);
        }
      }
    }
  }

  private report(code: string, node: TS.Node, message: string, hint: string): void {
    this.problems.push(new KilnError(code, message, this.at(node), hint));
  }

  /** "`forward`" or "the model": where a read happens, for the message. */
  private where(node: TS.Node): string {
    const ts = this.ts;
    for (let n: TS.Node | undefined = node.parent; n; n = n.parent) {
      if ((ts.isMethodDeclaration(n) || ts.isFunctionDeclaration(n) || ts.isGetAccessorDeclaration(n)) && n.name && ts.isIdentifier(n.name)) return `\`${n.name.text}\``;
    }
    return 'the model';
  }

  private snippet(node: TS.Node): string {
    const text = node.getText(this.sf).replace(/\s+/g, ' ');
    return text.length > 40 ? `${text.slice(0, 37)}...` : text;
  }

  // ---- what is a tensor ----

  private isTensor(e: TS.Expression): boolean {
    let memo = this.tensorMemo.get(e);
    if (memo === undefined) {
      memo = this.tensorSymbol ? this.typedTensor(e) : this.syntacticTensor(e);
      this.tensorMemo.set(e, memo);
    }
    return memo;
  }

  private typedTensor(e: TS.Expression): boolean {
    const t = this.checker.getTypeAtLocation(e);
    // Any is also the checker's error type: fall back to the syntax for it.
    if (t.flags & this.ts.TypeFlags.Any) return this.syntacticTensor(e);
    // `Tensor | undefined` is tested for presence, not for its values.
    if (t.isUnion()) return false;
    return (t.getSymbol() ?? t.aliasSymbol) === this.tensorSymbol;
  }

  private syntacticTensor(e0: TS.Expression): boolean {
    const ts = this.ts;
    const e = skipParens(ts, e0);
    if (ts.isNonNullExpression(e)) return this.isTensor(e.expression);
    if (ts.isAsExpression(e) || ts.isTypeAssertionExpression(e)) return this.isTensorTypeNode(e.type);
    if (ts.isConditionalExpression(e)) return this.isTensor(e.whenTrue) && this.isTensor(e.whenFalse);
    if (ts.isBinaryExpression(e) && (isLogical(ts, e.operatorToken.kind) || e.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken)) {
      return this.isTensor(e.left) && this.isTensor(e.right);
    }
    if (ts.isIdentifier(e)) return this.symbolIsTensor(this.checker.getSymbolAtLocation(e));
    if (ts.isPropertyAccessExpression(e)) {
      if (NOT_TENSOR.has(e.name.text)) return false;
      return this.symbolIsTensor(this.checker.getSymbolAtLocation(e.name));
    }
    if (ts.isCallExpression(e)) {
      const callee = skipParens(ts, e.expression);
      if (ts.isPropertyAccessExpression(callee)) {
        if (callee.name.text === 'forward' || this.isKiln(callee.expression, 'F')) return true;
        if (!NOT_TENSOR.has(callee.name.text) && this.isTensor(callee.expression)) return true;
      }
      const s = this.checker.getSymbolAtLocation(ts.isPropertyAccessExpression(callee) ? callee.name : callee);
      return (s?.declarations ?? []).some((d) => (ts.isMethodDeclaration(d) || ts.isFunctionDeclaration(d)) && d.type !== undefined && this.isTensorTypeNode(d.type));
    }
    return false;
  }

  /** A variable, parameter or property: by its annotation, else by what is assigned to it. */
  private symbolIsTensor(s: TS.Symbol | undefined): boolean {
    const ts = this.ts;
    if (!s) return false;
    const memo = this.symbolMemo.get(s);
    if (memo !== undefined) return memo;
    this.symbolMemo.set(s, false); // cycles (x = x.relu()) decide nothing
    let result = false;
    for (const d of s.declarations ?? []) {
      if (ts.isParameter(d) || ts.isVariableDeclaration(d) || ts.isPropertyDeclaration(d)) {
        if (d.type) {
          result = !(ts.isParameter(d) && d.questionToken) && !(ts.isPropertyDeclaration(d) && d.questionToken) && this.isTensorTypeNode(d.type);
          break;
        }
        if (d.initializer && this.isTensor(d.initializer)) result = true;
      }
    }
    if (!result && !(s.declarations ?? []).some((d) => 'type' in d && d.type)) {
      result = (this.assignmentsTo().get(s) ?? []).some((a) => this.isTensor(a));
    }
    this.symbolMemo.set(s, result);
    return result;
  }

  private assignmentsDone = false;
  private assignmentsTo(): Map<TS.Symbol, TS.Expression[]> {
    const ts = this.ts;
    if (!this.assignmentsDone) {
      this.assignmentsDone = true;
      const visit = (n: TS.Node): void => {
        if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
          const left = skipParens(ts, n.left);
          const target = ts.isIdentifier(left) ? left : ts.isPropertyAccessExpression(left) ? left.name : undefined;
          const s = target && this.checker.getSymbolAtLocation(target);
          if (s) this.assignments.set(s, [...(this.assignments.get(s) ?? []), n.right]);
        }
        ts.forEachChild(n, visit);
      };
      visit(this.sf);
    }
    return this.assignments;
  }

  /** `Tensor` (or its local alias, or `kiln.Tensor`), exactly: not a union with it. */
  private isTensorTypeNode(t: TS.TypeNode): boolean {
    const ts = this.ts;
    while (ts.isParenthesizedTypeNode(t)) t = t.type;
    return ts.isTypeReferenceNode(t) && this.isKiln(t.typeName, 'Tensor');
  }
}

const CONTROL_HINT = 'branch on a plain number or setting known when the model is built, or compute both sides with tensor operations and combine them (e.g. multiply by a mask)';

function isKilnImport(ts: typeof TS, d: { moduleSpecifier: TS.Expression }): boolean {
  return ts.isStringLiteral(d.moduleSpecifier) && d.moduleSpecifier.text === 'kiln';
}

function skipParens(ts: typeof TS, e: TS.Expression): TS.Expression {
  while (ts.isParenthesizedExpression(e)) e = e.expression;
  return e;
}

function isLogical(ts: typeof TS, k: TS.SyntaxKind): boolean {
  return k === ts.SyntaxKind.AmpersandAmpersandToken || k === ts.SyntaxKind.BarBarToken;
}

function hasModifier(ts: typeof TS, node: TS.HasModifiers, kind: TS.SyntaxKind): boolean {
  return ts.getModifiers(node)?.some((m) => m.kind === kind) ?? false;
}
