import { KilnError, type SourceLoc } from '../ir/errors.ts';
import type { Init } from '../ir/graph.ts';
import { callerLoc } from './source-loc.ts';
import type { Tensor } from './tensor.ts';
import { currentTracer } from './tracer.ts';

export interface StateDecl {
  readonly shape: number[];
  readonly init: Init;
  readonly kind: 'param' | 'buffer';
}

interface Internals {
  readonly state: Map<string, StateDecl>;
  readonly loc: SourceLoc | undefined;
  path: string;
}

// Bookkeeping lives outside the instance so that a model's own fields are exactly its layers,
// the way PyTorch's registration sees them.
const internals = new WeakMap<Module, Internals>();

function own(m: Module): Internals {
  let i = internals.get(m);
  if (!i) {
    i = { state: new Map(), loc: callerLoc(), path: '' };
    internals.set(m, i);
  }
  return i;
}

/**
 * Base class of every model and layer, as torch.nn.Module: fields holding modules are its
 * children, named by their field names; parameters are declared by the layers.
 */
export class Module {
  constructor() {
    own(this);
  }

  forward(_x: Tensor): Tensor {
    throw new KilnError('no-forward', `${this.constructor.name} has no forward()`, own(this).loc, 'define forward(x: Tensor): Tensor');
  }

  /** True while tracing the training step, false for evaluation (as module.training). */
  get training(): boolean {
    return currentTracer('Module.training').mode === 'train';
  }

  /** Child modules in declaration order, as named_children(). */
  namedChildren(): [string, Module][] {
    return Object.entries(this).filter((e): e is [string, Module] => e[1] instanceof Module);
  }

  /** The state_dict prefix of this module ('' for the model itself). */
  get path(): string {
    return own(this).path;
  }

  /** Where the model file constructed this module. */
  get loc(): SourceLoc | undefined {
    return own(this).loc;
  }

  /** Own parameters and buffers by local name, in declaration order. */
  get declaredState(): ReadonlyMap<string, StateDecl> {
    return own(this).state;
  }

  protected declareState(name: string, decl: StateDecl): void {
    own(this).state.set(name, decl);
  }

  /** Reads a declared parameter or buffer in the graph being traced. */
  protected state(name: string): Tensor {
    return currentTracer(`${this.constructor.name}.forward`).stateTensor(this.qualified(name));
  }

  protected qualified(name: string): string {
    const p = own(this).path;
    return p ? `${p}.${name}` : name;
  }

  /** Runs a layer's forward with its nodes attributed to it. */
  protected traced(fn: () => Tensor): Tensor {
    return currentTracer(`${this.constructor.name}.forward`).within(own(this).path, fn);
  }
}

/** Names every module of the tree by its state_dict path and lists them in state_dict order. */
export function assignPaths(root: Module): Module[] {
  const seen = new Set<Module>();
  const order: Module[] = [];
  const visit = (m: Module, path: string) => {
    if (seen.has(m)) throw new KilnError('model', `module '${path}' is also registered as '${own(m).path}'`, own(m).loc, 'use a separate layer instance for each place in the model');
    seen.add(m);
    own(m).path = path;
    order.push(m);
    for (const [name, child] of m.namedChildren()) visit(child, path ? `${path}.${name}` : name);
  };
  visit(root, '');
  return order;
}
