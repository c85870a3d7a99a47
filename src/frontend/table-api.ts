import { allElementwise, type ElementwiseDef } from '../ir/elementwise.ts';
import type { Attrs } from '../ir/graph.ts';
import type { ApiParam, OpApi } from '../ir/op-api.ts';
import '../ir/ops/index.ts';
import type * as ops from '../ir/ops/index.ts';
import { badArg, layerOptions } from './nn/args.ts';
import { Tensor } from './tensor.ts';

// The Tensor methods and `F.*` functions of the ops whose table entry has an `api` (see
// src/ir/op-api.ts), values and types both derived from the entries: an op added to the table
// with an `api` is in the model API, type-checked, with nothing written here.

type Defs = typeof ops;
/** The API entries of the op table, with each op's arity. */
type Entry = { [K in keyof Defs]: Defs[K] extends { readonly api: infer A extends OpApi; readonly arity: infer N extends number } ? { api: A; arity: N } : never }[keyof Defs];

type Value<P> = P extends { oneOf: readonly (infer S extends string)[] } ? S : P extends { default: boolean } ? boolean : P extends { default: null } ? number | null : number;
type Params<A> = A extends { params: infer Ps extends readonly ApiParam[] } ? Ps : readonly [];
type Positional<Ps extends readonly ApiParam[]> = { -readonly [I in keyof Ps]?: Value<Ps[I]> };
type Named<Ps extends readonly ApiParam[]> = { [P in Ps[number] as P['name']]?: Value<P> };
/** The non-tensor arguments: positional in PyTorch's order, or one options object. */
export type ParamArgs<A> = Params<A> extends readonly [] ? [] : Positional<Params<A>> | [Named<Params<A>>];

/** A tensor operand; a number is a constant, broadcast. */
export type Operand = Tensor | number;
type Operands<N> = N extends 1 ? [] : N extends 2 ? [Operand] : N extends 3 ? [Operand, Operand] : Operand[];

type Named_<E, K extends keyof OpApi> = E extends { api: { [_ in K]: infer M extends string } } ? M : never;

export type TableMethods = { [E in Entry as Named_<E, 'method'>]: (...args: [...Operands<E['arity']>, ...ParamArgs<E['api']>]) => Tensor };
export type TableFunctions = { [E in Entry as Named_<E, 'functional'>]: (x: Tensor, ...args: [...Operands<E['arity']>, ...ParamArgs<E['api']>]) => Tensor };
/** The layers' entries, for nn/table-layers.ts. */
export type LayerEntry = Entry extends infer E ? (E extends { api: { module: string } } ? E : never) : never;

/** Entries of the op table that are in the model API. */
export function apiEntries(): (ElementwiseDef & { api: OpApi })[] {
  return allElementwise().filter((d): d is ElementwiseDef & { api: OpApi } => d.api !== undefined);
}

/** The attrs of a call from its non-tensor arguments, checked against the entry's params. */
export function paramAttrs(def: ElementwiseDef & { api: OpApi }, label: string, rest: readonly unknown[]): Attrs {
  const params = def.api.params ?? [];
  const names = params.map((p) => p.name);
  const given = layerOptions(label, rest, { positional: names, supported: names });
  const attrs: Record<string, Attrs[string]> = {};
  for (const p of params) {
    const v = given[p.name] === undefined ? p.default : given[p.name];
    if (v === undefined) badArg(label, `${p.name} is required`, `pass it as in PyTorch, e.g. ${label}(${names.join(', ')})`);
    const ok = p.oneOf ? p.oneOf.includes(v as string) : typeof p.default === 'boolean' ? typeof v === 'boolean' : (v === null && p.default === null) || (typeof v === 'number' && Number.isFinite(v));
    if (!ok) badArg(label, `${p.name} must be ${p.oneOf ? `one of ${p.oneOf.map((s) => `'${s}'`).join(', ')}` : typeof p.default === 'boolean' ? 'true or false' : `a finite number${p.default === null ? ' or null' : ''}`}, got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
    if (!p.ignored && v !== null) attrs[p.name] = v as Attrs[string];
  }
  const wrong = def.api.check?.(attrs);
  if (wrong) badArg(label, wrong);
  return attrs;
}

/** Records the op on its operands (numbers become constants). */
export function applyOp(def: ElementwiseDef, label: string, operands: readonly unknown[], attrs: Attrs): Tensor {
  const anchor = operands.find((o): o is Tensor => o instanceof Tensor);
  if (!anchor) badArg(label, 'needs a tensor operand', 'call it on a tensor of the model');
  const ts = operands.map((o, k) => {
    if (o instanceof Tensor) return o;
    if (typeof o === 'number') return anchor.tracer.constant(o);
    return badArg(label, `operand ${k + 1} must be a tensor or a number, got ${o === null ? 'null' : typeof o}`);
  });
  return anchor.tracer.op(def.name, ts, attrs);
}

/** A call `label(...operands, ...params)` with `arity` operands first. */
function call(def: ElementwiseDef & { api: OpApi }, label: string, args: readonly unknown[]): Tensor {
  const n = def.arity;
  if (args.length < n) badArg(label, `takes ${n} tensor operand${n === 1 ? '' : 's'}, got ${args.length}`);
  return applyOp(def, label, args.slice(0, n), paramAttrs(def, label, args.slice(n)));
}

/** The Tensor methods, for Tensor.prototype. */
export function tableMethods(): Record<string, (this: Tensor, ...args: unknown[]) => Tensor> {
  return Object.fromEntries(
    apiEntries().flatMap((def) => {
      const name = def.api.method;
      if (!name) return [];
      const at = def.api.receiver ?? 0;
      return [[name, function (this: Tensor, ...args: unknown[]) {
        return call(def, `Tensor.${name}`, [...args.slice(0, at), this, ...args.slice(at)]);
      }]];
    }),
  );
}

/** The `F.*` functions: keyed by the entries' `functional` names, which is what TableFunctions says. */
export function tableFunctions(): TableFunctions {
  const fns = apiEntries().flatMap((def) => (def.api.functional ? [[def.api.functional, (...args: unknown[]) => call(def, `F.${def.api.functional}`, args)]] : []));
  return Object.fromEntries(fns) as unknown as TableFunctions;
}
