import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { badInput, layerOptions, positiveInt, type OptionSpec } from './args.ts';

// PyTorch's options past the two sizes, in its order; kiln implements none but their defaults.
const FIXED = { paddingIdx: null, maxNorm: null, normType: 2, scaleGradByFreq: false, sparse: false };
export const EMBEDDING_OPTIONS: OptionSpec = { positional: Object.keys(FIXED), supported: [], fixed: FIXED };

/**
 * weight[ids] for ids [...] of token indices (f32 values): [..., embedding_dim]. An id outside
 * [0, num_embeddings) gives a row of zeros where PyTorch raises (src/ir/ops/embedding.ts).
 */
export function embeddingOf(layer: string, ids: Tensor, weight: Tensor, module?: Module): Tensor {
  if (weight.ndim !== 2) badInput(layer, module, 'a 2-d weight [num_embeddings, embedding_dim]', `one of shape [${weight.shape}]`, ids);
  return ids.tracer.op('embedding', [ids, weight]);
}

/** torch.nn.Embedding(num_embeddings, embedding_dim): weight [num, dim], N(0, 1) init. */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;

  constructor(numEmbeddings: number, embeddingDim: number, options?: { paddingIdx?: null; maxNorm?: null; normType?: 2; scaleGradByFreq?: false; sparse?: false });
  constructor(numEmbeddings: number, embeddingDim: number, paddingIdx?: null, maxNorm?: null, normType?: 2, scaleGradByFreq?: false, sparse?: false);
  constructor(numEmbeddings: number, embeddingDim: number, ...rest: unknown[]) {
    super();
    layerOptions('Embedding', rest, EMBEDDING_OPTIONS);
    this.numEmbeddings = positiveInt('Embedding', 'num_embeddings', numEmbeddings);
    this.embeddingDim = positiveInt('Embedding', 'embedding_dim', embeddingDim);
    // reset_parameters: init.normal_(weight), drawn from the generator like every other init.
    this.declareState('weight', { shape: [this.numEmbeddings, this.embeddingDim], init: { kind: 'normal', mean: 0, std: 1 }, kind: 'param' });
  }

  override forward(ids: Tensor): Tensor {
    return this.traced(() => embeddingOf('Embedding', ids, this.state('weight'), this));
  }
}
