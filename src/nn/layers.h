// Building blocks of a decoder (torch::nn modules): norm, rotary embedding, attention, MLP, block.
// Activations are float32 throughout (residual stream, norms, softmax); weights may be bf16/f16,
// in which case inputs are cast for the matmul and the result cast back to float32.
// Shapes: B batch, T positions, d d_model, H n_head, Hkv n_head_kv, dh d_head.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "lens/config.h"
#include "lens/hooks.h"
#include "model/weights.h"
#include "nn/rope.h"

namespace lens {

/// y = x W^T + b with W possibly in a lower precision; x and y are float32.
at::Tensor linear_f32(const at::Tensor& x, const LinearWeights& l);
/// The same product, y left in W's dtype (x is cast to it).
at::Tensor linear_native(const at::Tensor& x, const LinearWeights& l);
/// linear_native over x (..., in) as products of at most block_rows rows each, written into one
/// output: the same values (up to the matmul's own rounding) with each product's temporaries
/// bounded by its block (see Model::unembed for why).
at::Tensor linear_native_blocked(const at::Tensor& x, const LinearWeights& l, int64_t block_rows);

/// Softmax over the last dim of attention scores (..., T, T) in place, query i attending to keys
/// j <= i (and i - j < window when window > 0); masked entries become 0. Rows are taken as query
/// positions modulo T, so (B, Hkv, rep * T, T) scores of grouped heads work too. Contiguous float32
/// CPU tensors only; one read and one write of each row.
void causal_softmax_(at::Tensor& scores, int64_t window);

/// at::gelu(x, "tanh") for float32 CPU tensors as one vectorised pass (relative error ~1e-6, see
/// activation_kernels.cpp); other tensors go to at::gelu.
at::Tensor gelu_tanh(const at::Tensor& x);

/// softmax(q k^T, causal / window as above) v without materialising the scores: q (B, Hkv, rep*T,
/// dh) already scaled, k and v (B, Hkv, T, dh); returns (B, Hkv, rep*T, dh). float32 CPU only.
/// Per query row it costs ~4 dh flops per visible key in vector loops over keys, so it beats the
/// two batched matmuls (which run at ~15-30 GFLOP/s for dh 8 here) for small head dims; the
/// measured cut-off is kFusedAttentionMaxHeadDim in layers.cpp.
at::Tensor fused_causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t window);

class NormImpl : public torch::nn::Module {
 public:
  NormImpl(const ModelConfig& cfg, const NormWeights& w);
  NormImpl(NormKind kind, double eps, bool plus_one, const NormWeights& w);
  at::Tensor forward(const at::Tensor& x);  // (..., d) -> (..., d), float32

 private:
  NormKind kind_;
  double eps_;
  at::Tensor w_;  // (d) float32, already 1 + w for Gemma-style norms; (H, d): one gain per head for x (B, H, T, d)
                  // (Cohere / StableLM q/k norms); undefined: no gain (OLMo 1's LayerNorm)
  at::Tensor b_;  // (d) float32 or undefined
};
TORCH_MODULE(Norm);

/// The rotary tables of one forward pass: the model-wide ones and, for models with a second rope
/// (local layers), those. Undefined tensors where the model has none.
struct PosTables {
  RopeTables global;
  RopeTables local;
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& cfg, const LayerWeights& w, int64_t layer);
  /// x: (B, T, d) normed input -> (B, T, d) attention output (before the residual add).
  at::Tensor forward(const at::Tensor& x, const PosTables& pos, Hooks* hooks);

 private:
  int64_t layer_, n_head_, n_head_kv_, d_head_;
  LayerSpec spec_;  // window, rotary or not, which rope
  double scale_;
  double softcap_;   // > 0: scores pass through tanh(s / cap) * cap (matmul path only, see forward)
  double clip_qkv_;  // > 0: q, k, v clamped to [-clip, clip] after the projections
  RopePairing pairing_;
  QkNorm qk_norm_kind_;
  LinearWeights q_, k_, v_, o_, qkv_;
  Norm q_norm_{nullptr}, k_norm_{nullptr};  // over d_head (or the whole projection), when qk_norm_kind_ != kNone
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const ModelConfig& cfg, const LayerWeights& w);
  at::Tensor forward(const at::Tensor& x);  // (B, T, d) -> (B, T, d)

 private:
  MlpKind kind_;
  LinearWeights up_, gate_, down_;
  at::Tensor act_params_;  // xIELU: softplus(alpha_p), beta + softplus(alpha_n), beta, eps (float32)
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelConfig& cfg, const LayerWeights& w, int64_t layer);
  /// x: (B, T, d) residual stream before the block -> after it. Emits the block's hook points:
  /// hook_attn_out and hook_mlp_out are what each sub-layer adds to the residual stream (after any
  /// post-norm and residual multiplier), so resid_mid = resid_pre + attn_out exactly.
  at::Tensor forward(const at::Tensor& x, const PosTables& pos, Hooks* hooks);

 private:
  int64_t layer_;
  bool parallel_;
  NormPlacement placement_;
  double residual_multiplier_;
  Norm ln1_{nullptr}, ln2_{nullptr};
  Norm ln1_post_{nullptr}, ln2_post_{nullptr};  // kSandwich: the extra norms after each sub-layer
  Attention attn_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(Block);

}  // namespace lens
