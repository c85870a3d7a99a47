import { apiEntries, applyOp, paramAttrs, type LayerEntry, type ParamArgs } from '../table-api.ts';
import type { Attrs } from '../../ir/graph.ts';
import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';

// The `nn.*` layers of the op table's `api` entries (ReLU, Tanh, GELU, LeakyReLU, ...): a layer
// takes the op's parameters in its constructor and applies the op in forward.

/** A layer made from an op: what `new nn.GELU('tanh')` is. */
export interface OpLayer extends Module {
  /** The op's attributes, from the constructor's arguments. */
  readonly attrs: Attrs;
  forward(x: Tensor): Tensor;
}

export type TableLayers = { [E in LayerEntry as E['api']['module']]: new (...args: ParamArgs<E['api']>) => OpLayer };

export function tableLayers(): TableLayers {
  const layers = apiEntries().flatMap((def) => {
    const name = def.api.module;
    if (name === undefined) return [];
    if (def.arity !== 1) throw new Error(`op ${def.name}: an nn layer applies a unary op, not one of arity ${def.arity}`);
    const layer = class extends Module implements OpLayer {
      readonly attrs: Attrs;
      constructor(...args: unknown[]) {
        super();
        this.attrs = paramAttrs(def, name!, args);
      }

      override forward(x: Tensor): Tensor {
        return this.traced(() => applyOp(def, name!, [x], this.attrs));
      }
    };
    Object.defineProperty(layer, 'name', { value: name });
    return [[name, layer]];
  });
  // Keyed by the entries' `module` names, which is what TableLayers says.
  return Object.fromEntries(layers) as unknown as TableLayers;
}
