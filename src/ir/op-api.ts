import type { Attrs } from './graph.ts';

/**
 * How an op appears in the model API (Tensor methods, `F.*`, `nn.*`), written in the op's table
 * entry: the frontend builds the methods, functions and layers from these, so an op with an
 * `api` needs no frontend code. Names are PyTorch's, in camelCase.
 */
export interface OpApi {
  /** torch.Tensor method, e.g. `x.tanh()`, `a.minimum(b)`. */
  readonly method?: string;
  /** torch.nn.functional function, e.g. `F.leakyRelu(x, 0.2)`. */
  readonly functional?: string;
  /** torch.nn layer, e.g. `new nn.LeakyReLU(0.2)`: its forward applies the op to its input. */
  readonly module?: string;
  /** The operand a method is called on (default 0); the others are its first arguments, in order. */
  readonly receiver?: number;
  /** Arguments after the tensor operands, in PyTorch's order; each becomes the attr of its name. */
  readonly params?: readonly ApiParam[];
  /** Checks the attrs as a whole: what is wrong with them, or undefined. */
  readonly check?: (attrs: Attrs) => string | undefined;
}

/** One non-tensor argument, positional in PyTorch's order or named in an options object. */
export interface ApiParam {
  readonly name: string;
  /** Its default: a number, a boolean, a string (with `oneOf`), or null (may be absent, as clamp's min); none: required. */
  readonly default?: number | boolean | string | null;
  /** The strings it may be, when it is one. */
  readonly oneOf?: readonly string[];
  /** Accepted for PyTorch's signature and not recorded (`inplace`: kiln plans memory itself). */
  readonly ignored?: boolean;
}
