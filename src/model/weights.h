// The weights of a decoder in architecture-neutral slots. Architecture files (src/arch) fill it
// from a checkpoint; the model code (src/model) only reads it. Linear weights are (out, in),
// possibly as transposed views of the stored tensor (GPT-2's Conv1D); undefined = absent.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace lens {

struct LinearWeights {
  at::Tensor w;  // (out, in)
  at::Tensor b;  // (out) or undefined
};

struct NormWeights {
  at::Tensor w;  // (d)
  at::Tensor b;  // (d) or undefined (RMSNorm)
};

struct LayerWeights {
  NormWeights ln1, ln2;          // ln2 unused by parallel blocks that share one norm
  LinearWeights q, k, v, o;      // q: (n_head*d_head, d), k/v: (n_head_kv*d_head, d), o: (d, n_head*d_head)
  // Or q, k and v stacked by rows in one weight (q | k | v), when the checkpoint stores them so (GPT-2's
  // c_attn): one product instead of three on row slices, which libtorch multiplies ~1.8x slower. q, k
  // and v are then undefined.
  LinearWeights qkv;
  LinearWeights up, gate, down;  // up/gate: (d_mlp, d), down: (d, d_mlp); gate undefined for plain MLPs
  NormWeights q_norm, k_norm;    // (d_head) per-head q/k RMSNorm gains, or undefined
  NormWeights ln1_post, ln2_post;  // (d) norms after the attention / MLP output (kPost, kSandwich)
  at::Tensor act_params;         // activation parameters (xIELU: alpha_p, alpha_n, beta, eps), or undefined
};

struct ModelWeights {
  at::Tensor tok_embed;          // (vocab, d)
  at::Tensor pos_embed;          // (n_ctx, d), learned positions only
  std::vector<LayerWeights> layers;
  NormWeights ln_f;
  LinearWeights unembed;         // (vocab, d); the same tensor as tok_embed when tied
};

}  // namespace lens
