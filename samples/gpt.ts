import { Module, nn, F, arange, type Tensor } from 'kiln';

/**
 * A small GPT over bytes, as GPT-2 and nanoGPT write one: token and position embeddings, pre-norm
 * blocks of causal self-attention and a GELU MLP, each added back to the residual stream, a final
 * layer norm and a linear head to 256 byte logits. 4 layers, 4 heads, width 128, context 128:
 * 0.88 M parameters. test/fixtures/pytorch/make_gpt_fixture.py is the same model in PyTorch.
 */
export interface GPTConfig {
  vocab: number;
  width: number;
  heads: number;
  layers: number;
  context: number;
  dropout: number;
}

export const CONFIG: GPTConfig = { vocab: 256, width: 128, heads: 4, layers: 4, context: 128, dropout: 0.1 };

/** Multi-head causal self-attention: one linear layer makes q, k and v for every head. */
export class CausalSelfAttention extends Module {
  qkv: nn.Linear;
  proj: nn.Linear;
  dropout: nn.Dropout;

  constructor(readonly config: GPTConfig) {
    super();
    this.qkv = new nn.Linear(config.width, 3 * config.width);
    this.proj = new nn.Linear(config.width, config.width);
    this.dropout = new nn.Dropout(config.dropout);
  }

  forward(x: Tensor): Tensor {
    const [B, T, C] = x.size() as [number, number, number];
    const H = this.config.heads;
    const [q, k, v] = this.qkv.forward(x).split(C, 2).map((t) => t.view(B, T, H, C / H).transpose(1, 2)) as [Tensor, Tensor, Tensor];
    const y = F.scaledDotProductAttention(q, k, v, { isCausal: true, dropoutP: this.training ? this.config.dropout : 0 });
    return this.dropout.forward(this.proj.forward(y.transpose(1, 2).contiguous().view(B, T, C)));
  }
}

/** The position-wise MLP: width → 4·width → GELU → width. */
export class MLP extends Module {
  fc: nn.Linear;
  gelu = new nn.GELU();
  proj: nn.Linear;
  dropout: nn.Dropout;

  constructor(config: GPTConfig) {
    super();
    this.fc = new nn.Linear(config.width, 4 * config.width);
    this.proj = new nn.Linear(4 * config.width, config.width);
    this.dropout = new nn.Dropout(config.dropout);
  }

  forward(x: Tensor): Tensor {
    return this.dropout.forward(this.proj.forward(this.gelu.forward(this.fc.forward(x))));
  }
}

/** A pre-norm transformer block: x + attn(ln1(x)), then + mlp(ln2(·)). */
export class Block extends Module {
  ln1: nn.LayerNorm;
  attn: CausalSelfAttention;
  ln2: nn.LayerNorm;
  mlp: MLP;

  constructor(config: GPTConfig) {
    super();
    this.ln1 = new nn.LayerNorm(config.width);
    this.attn = new CausalSelfAttention(config);
    this.ln2 = new nn.LayerNorm(config.width);
    this.mlp = new MLP(config);
  }

  forward(x: Tensor): Tensor {
    x = x.add(this.attn.forward(this.ln1.forward(x)));
    return x.add(this.mlp.forward(this.ln2.forward(x)));
  }
}

export class GPT extends Module {
  wte: nn.Embedding;
  wpe: nn.Embedding;
  dropout: nn.Dropout;
  blocks: nn.Sequential;
  norm: nn.LayerNorm;
  head: nn.Linear;

  constructor(readonly config: GPTConfig = CONFIG) {
    super();
    this.wte = new nn.Embedding(config.vocab, config.width);
    this.wpe = new nn.Embedding(config.context, config.width);
    this.dropout = new nn.Dropout(config.dropout);
    this.blocks = new nn.Sequential(...Array.from({ length: config.layers }, () => new Block(config)));
    this.norm = new nn.LayerNorm(config.width);
    this.head = new nn.Linear(config.width, config.vocab);
  }

  /** Token ids [B, T] → next-byte logits [B·T, vocab], as `logits.view(-1, V)` in PyTorch. */
  forward(idx: Tensor): Tensor {
    const T = idx.size(1);
    const x = this.dropout.forward(this.wte.forward(idx).add(this.wpe.forward(arange(T))));
    return this.head.forward(this.norm.forward(this.blocks.forward(x))).view(-1, this.config.vocab);
  }
}

export default GPT;

/**
 * AdamW at lr 3e-4 with weight decay 0.1, batch 32 windows of 128 bytes, the learning rate warmed
 * up over the first 10% of the run and annealed along a cosine (OneCycleLR without its momentum
 * cycle). The text is any UTF-8 file: `kiln train samples/gpt.ts --data FILE.txt`.
 */
export const training = {
  input: [128], dataset: 'text', batchSize: 32, epochs: 5,
  loss: 'crossEntropy', optimizer: { type: 'adamw', lr: 3e-4, weightDecay: 0.1 },
  schedule: { kind: 'onecycle', maxLr: 3e-4, pctStart: 0.1, cycleMomentum: false },
};
