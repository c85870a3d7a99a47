import type { Attrs, AttrValue } from './graph.ts';
import type { Expr } from './program.ts';

/**
 * How a fused kernel kind (src/ir/kernels.ts) is declared, once: its attributes with their types,
 * and its inputs and outputs as named roles, some present only under a condition on the attrs.
 * From that one declaration come the typed view a backend reads a kernel through (`read`) and
 * the builder a pass makes one with (`build`); both check the kernel against the declaration, so
 * a pass and a backend that disagree fail at the kernel, naming the role.
 *
 * A Program keeps the positional form (Kernel.inputs and .outputs, in role order): that is what
 * bundles store and what an expression's `{ input: k }` indexes.
 */

/** An attribute: what it means, and the test its value passes, which is its type. */
export interface AttrSpec<T extends AttrValue | undefined> {
  readonly doc: string;
  readonly is: (v: AttrValue | undefined) => v is T;
}

/** A pair attr: [h, w] of a window, stride or padding. */
export type Pair = readonly [number, number];

export const attr = {
  flag: (doc: string): AttrSpec<boolean> => ({ doc, is: (v): v is boolean => typeof v === 'boolean' }),
  int: (doc: string): AttrSpec<number> => ({ doc, is: (v): v is number => Number.isInteger(v) }),
  number: (doc: string): AttrSpec<number> => ({ doc, is: (v): v is number => typeof v === 'number' }),
  pair: (doc: string): AttrSpec<Pair> => ({ doc, is: (v): v is Pair => Array.isArray(v) && v.length === 2 && v.every(Number.isInteger) }),
  ints: (doc: string): AttrSpec<readonly number[]> => ({ doc, is: (v): v is readonly number[] => Array.isArray(v) && v.every(Number.isInteger) }),
  oneOf: <const V extends string>(values: readonly V[], doc: string): AttrSpec<V> => ({ doc, is: (v): v is V => values.includes(v as V) }),
  /** Absent from kernels where it has no meaning (a pool window without pooling). */
  optional: <T extends AttrValue>(s: AttrSpec<T>): AttrSpec<T | undefined> => ({ doc: s.doc, is: (v): v is T | undefined => v === undefined || s.is(v) }),
};

type AttrSpecs = Readonly<Record<string, AttrSpec<AttrValue | undefined>>>;
type Flat<T> = { [K in keyof T]: T[K] };
type SpecType<S> = S extends AttrSpec<infer T> ? T : never;
type KeysWhere<R, V> = { [K in keyof R]-?: R[K] extends V ? K : never }[keyof R];

/** A kind's attrs as a type: an optional attribute is an optional key. */
export type AttrsOf<S> = Flat<
  { readonly [K in keyof S as undefined extends SpecType<S[K]> ? never : K]: SpecType<S[K]> } & {
    readonly [K in keyof S as undefined extends SpecType<S[K]> ? K : never]?: Exclude<SpecType<S[K]>, undefined>;
  }
>;

/**
 * When an optional role is present, as data so that a message can say it: a boolean attr's name
 * (true), attr values to match (all of them; a list matches any of its values), or a list of
 * conditions, any of which holds.
 */
export type Cond<A> =
  | KeysWhere<A, boolean | undefined>
  | { readonly [K in keyof A]?: A[K] extends readonly unknown[] ? never : A[K] | readonly A[K][] }
  | readonly Cond<A>[];

/** An input or output of a kind: always there, there when `when` holds, or a list. */
export type Role<A> =
  | { readonly slot: 'one'; readonly doc: string }
  | { readonly slot: 'maybe'; readonly doc: string; readonly when: Cond<A> }
  | {
      readonly slot: 'many';
      readonly doc: string;
      /** Its length, for a list that is not last (and to check one that is); a last list without it takes the rest. */
      readonly count?: (a: A, expr: Expr | undefined) => number;
    };

type Roles<A> = Readonly<Record<string, Role<A>>>;

export const role = {
  one: (doc: string) => ({ slot: 'one', doc }) as const,
  maybe: <A>(doc: string, when: Cond<NoInfer<A>>): Role<A> & { slot: 'maybe' } => ({ slot: 'maybe', doc, when }),
  many: <A>(doc: string, count?: (a: NoInfer<A>, expr: Expr | undefined) => number): Role<A> & { slot: 'many' } => ({ slot: 'many', doc, count }),
};

/** A kernel's inputs or outputs by role name. */
export type Parts<R, T> = Flat<
  { readonly [K in KeysWhere<R, { slot: 'one' }>]: T } & { readonly [K in KeysWhere<R, { slot: 'maybe' }>]?: T } & {
    readonly [K in KeysWhere<R, { slot: 'many' }>]: readonly T[];
  }
>;

/** What `expr` is, for a kind that takes one; `optional` where a kernel of the kind may have none. */
export interface ExprUse {
  readonly doc: string;
  readonly optional?: true;
}

type ExprOf<E> = E extends ExprUse ? (E extends { optional: true } ? Expr | undefined : Expr) : undefined;
type ExprArgs<E> = E extends ExprUse ? (E extends { optional: true } ? [expr?: Expr] : [expr: Expr]) : [];

/** What `read` takes: a Program's Kernel, a pass's kernel over value ids, or a backend's over its own handles. */
export interface KernelLike<TI, TO> {
  readonly kind: string;
  readonly attrs: Attrs;
  readonly inputs: readonly TI[];
  readonly outputs: readonly TO[];
  readonly expr?: Expr;
}

/** What `build` gives: the fields of a kernel that its kind fixes. */
export interface Built<T> {
  readonly kind: string;
  readonly attrs: Attrs;
  readonly inputs: T[];
  readonly outputs: T[];
  readonly expr?: Expr;
}

export interface KernelView<S, I, O, E, TI, TO> {
  readonly attrs: AttrsOf<S>;
  readonly inputs: Parts<I, TI>;
  readonly outputs: Parts<O, TO>;
  readonly expr: ExprOf<E>;
}

/** The typed view `read` gives of a kernel of kind K. */
export type ViewOf<K, TI, TO = TI> = K extends KernelKind<string, infer S, infer I, infer O, infer E> ? KernelView<S, I, O, E, TI, TO> : never;

export interface KernelKind<N extends string, S, I, O, E> {
  readonly kind: N;
  readonly doc: string;
  /** What the kernel keeps of its intermediates where that is the point of it, for dumps (kiln ir). */
  readonly memory?: string;
  readonly attrs: S;
  readonly inputs: I;
  readonly outputs: O;
  readonly expr: E;
  /** The kernel by role, checked against the declaration. */
  read<TI, TO = TI>(k: KernelLike<TI, TO>): KernelView<S, I, O, E, TI, TO>;
  /** A kernel of this kind from its parts, checked against the declaration. */
  build<T>(attrs: AttrsOf<S>, inputs: Parts<I, T>, outputs: Parts<O, T>, ...expr: ExprArgs<E>): Built<T>;
  /**
   * The positional lists of some of a kernel's parts, unchecked: for the fixed parts of a kernel in
   * the making, whose epilogue is not known yet.
   */
  layout<T>(inputs: Partial<Parts<I, T>>, outputs: Partial<Parts<O, T>>): { inputs: T[]; outputs: T[] };
}

function holds<A>(c: Cond<A>, a: A): boolean {
  if (typeof c === 'string') return (a as Record<string, unknown>)[c] === true;
  if (Array.isArray(c)) return c.some((x: Cond<A>) => holds(x, a));
  return Object.entries(c).every(([k, v]) => {
    const have = (a as Record<string, unknown>)[k];
    return Array.isArray(v) ? v.includes(have) : have === v;
  });
}

function condText(c: Cond<unknown>): string {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.map((x: Cond<unknown>) => condText(x)).join(' or ');
  return Object.entries(c).map(([k, v]) => `${k} = ${Array.isArray(v) ? v.join(' | ') : String(v)}`).join(' and ');
}

/**
 * Declares a kind: its name and attrs first, so that the roles' conditions are checked against
 * the attrs' types, then its doc, roles and expression.
 */
export function defineKind<N extends string, const S extends AttrSpecs>(kind: N, attrs: S) {
  type A = AttrsOf<S>;
  return <const I extends Roles<A>, const O extends Roles<A>, const E extends ExprUse | undefined = undefined>(decl: {
    readonly doc: string;
    readonly inputs: I;
    readonly outputs: O;
    readonly expr?: E;
    readonly memory?: string;
  }): KernelKind<N, S, I, O, E> => {
    const fail = (msg: string): never => {
      throw new Error(`${kind}: ${msg}`);
    };
    for (const roles of [decl.inputs, decl.outputs]) {
      const names = Object.keys(roles);
      names.forEach((name, i) => {
        const r = roles[name]!;
        if (r.slot === 'many' && !r.count && i !== names.length - 1) fail(`list ${name} needs a count: it is not last`);
      });
    }
    const checkAttrs = (a: Attrs): A => {
      for (const [name, spec] of Object.entries(attrs)) if (!spec.is(a[name])) fail(`attr ${name} is ${JSON.stringify(a[name])}, not ${spec.doc}`);
      for (const name of Object.keys(a)) if (!(name in attrs)) fail(`no attr ${name}`);
      return a as A;
    };
    const checkExpr = (expr: Expr | undefined) => {
      if (expr && !decl.expr) fail('takes no expression');
      if (!expr && decl.expr && !decl.expr.optional) fail('needs an expression');
    };
    const split = <T>(roles: Roles<A>, list: readonly T[], a: A, expr: Expr | undefined, what: string) => {
      const parts: Record<string, T | readonly T[]> = {};
      let at = 0;
      for (const [name, r] of Object.entries(roles)) {
        if (r.slot === 'many') {
          const n = r.count ? r.count(a, expr) : list.length - at;
          if (at + n > list.length) fail(`${what} ${name}: ${n} expected, ${list.length - at} left`);
          parts[name] = list.slice(at, at + n);
          at += n;
        } else if (r.slot === 'one' || holds(r.when, a)) {
          if (at >= list.length) fail(`${what} ${name} is missing`);
          parts[name] = list[at++]!;
        }
      }
      if (at !== list.length) fail(`${list.length} ${what}s, where the attrs make ${at}`);
      return parts;
    };
    const join = <T>(roles: Roles<A>, parts: Readonly<Record<string, T | readonly T[] | undefined>>, check: { a: A; expr: Expr | undefined; what: string } | undefined): T[] => {
      const list: T[] = [];
      for (const [name, r] of Object.entries(roles)) {
        const v = parts[name];
        if (r.slot === 'many') {
          const vs = (v ?? []) as readonly T[];
          if (check && r.count && r.count(check.a, check.expr) !== vs.length) fail(`${check.what} ${name}: ${r.count(check.a, check.expr)} expected, ${vs.length} given`);
          list.push(...vs);
          continue;
        }
        if (check) {
          const wanted = r.slot === 'one' || holds(r.when, check.a);
          if (wanted !== (v !== undefined)) fail(`${check.what} ${name} is ${wanted ? 'missing' : 'given'}, where it is present ${r.slot === 'one' ? 'always' : `only when ${condText(r.when)}`}`);
        }
        if (v !== undefined) list.push(v as T);
      }
      if (check) for (const name of Object.keys(parts)) if (!(name in roles)) fail(`no ${check.what} ${name}`);
      return list;
    };
    return {
      kind,
      doc: decl.doc,
      memory: decl.memory,
      attrs,
      inputs: decl.inputs,
      outputs: decl.outputs,
      expr: decl.expr as E,
      read<TI, TO = TI>(k: KernelLike<TI, TO>) {
        if (k.kind !== kind) fail(`read a ${k.kind} kernel`);
        const a = checkAttrs(k.attrs);
        checkExpr(k.expr);
        return {
          attrs: a,
          inputs: split(decl.inputs, k.inputs, a, k.expr, 'input') as Parts<I, TI>,
          outputs: split(decl.outputs, k.outputs, a, k.expr, 'output') as Parts<O, TO>,
          expr: k.expr as ExprOf<E>,
        };
      },
      build<T>(attrsIn: A, inputs: Parts<I, T>, outputs: Parts<O, T>, ...rest: ExprArgs<E>) {
        const expr = rest[0] as Expr | undefined;
        const a = checkAttrs(attrsIn as Attrs);
        checkExpr(expr);
        return {
          kind,
          attrs: a as Attrs,
          inputs: join<T>(decl.inputs, inputs, { a, expr, what: 'input' }),
          outputs: join<T>(decl.outputs, outputs, { a, expr, what: 'output' }),
          ...(expr ? { expr } : {}),
        };
      },
      layout<T>(inputs: Partial<Parts<I, T>>, outputs: Partial<Parts<O, T>>) {
        return { inputs: join<T>(decl.inputs, inputs, undefined), outputs: join<T>(decl.outputs, outputs, undefined) };
      },
    };
  };
}

/** A table of kinds keyed by name. */
export function kindTable<const D extends readonly { readonly kind: string }[]>(...kinds: D): { readonly [K in D[number] as K['kind']]: K } {
  return Object.fromEntries(kinds.map((k) => [k.kind, k])) as { readonly [K in D[number] as K['kind']]: K };
}
