// Decoder building blocks; see layers.h. Written for clarity over speed except where measured:
// weights stay in their loaded dtype (bf16 matmuls are ~4x faster on this CPU), everything
// numerically delicate (norms, softmax, rotary) runs in float32.
#include "nn/layers.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lens {

at::Tensor linear_native(const at::Tensor& x, const LinearWeights& l) {
  const auto wt = l.w.scalar_type();
  at::Tensor xin = x.scalar_type() == wt ? x : x.to(wt);
  return l.b.defined() ? at::linear(xin, l.w, l.b.to(wt)) : at::linear(xin, l.w);
}

at::Tensor linear_native_blocked(const at::Tensor& x, const LinearWeights& l, int64_t block_rows) {
  const int64_t in = x.size(-1), out_dim = l.w.size(0);
  const int64_t rows = in > 0 ? x.numel() / in : 0;
  if (rows <= block_rows) return linear_native(x, l);
  const at::Tensor x2 = x.reshape({rows, in});
  at::Tensor y = at::empty({rows, out_dim}, x.options().dtype(l.w.scalar_type()));  // (rows, out)
  for (int64_t r0 = 0; r0 < rows; r0 += block_rows) {
    const int64_t n = std::min(block_rows, rows - r0);
    y.narrow(0, r0, n).copy_(linear_native(x2.narrow(0, r0, n), l));
  }
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out_dim;
  return y.view(shape);
}

at::Tensor linear_f32(const at::Tensor& x, const LinearWeights& l) {
  at::Tensor y = linear_native(x, l);
  return y.scalar_type() == at::kFloat ? y : y.to(at::kFloat);
}

NormImpl::NormImpl(const ModelConfig& cfg, const NormWeights& w)
    : NormImpl(cfg.norm, cfg.norm_eps, cfg.norm_plus_one, w) {}

NormImpl::NormImpl(NormKind kind, double eps, bool plus_one, const NormWeights& w) : kind_(kind), eps_(eps) {
  if (w.w.defined()) {  // undefined: a LayerNorm without parameters (OLMo 1)
    w_ = w.w.to(at::kFloat);
    if (plus_one) w_ = w_ + 1.0;
  }
  if (w.b.defined()) b_ = w.b.to(at::kFloat);
}

at::Tensor NormImpl::forward(const at::Tensor& x) {
  if (w_.defined() && w_.dim() == 2) {
    // One gain per head (StableLM's and Cohere's q/k norms: weight (H, dh)) for x (B, H, T, dh): normalise over dh
    // without parameters, then scale row h of the weight onto head h.
    TORCH_CHECK(x.dim() == 4 && x.size(1) == w_.size(0), "per-head norm weight ", w_.sizes(), " for input ", x.sizes());
    at::Tensor y = kind_ == NormKind::kLayerNorm ? at::layer_norm(x, {x.size(-1)}, {}, {}, eps_)
                                                 : x * at::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps_);
    y = y * w_.unsqueeze(1);  // (H, 1, dh)
    return b_.defined() ? y + b_.unsqueeze(1) : y;
  }
  if (kind_ == NormKind::kLayerNorm) {
    return at::layer_norm(x, {x.size(-1)}, w_, b_, eps_);
  }
  at::Tensor rms = at::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return x * rms * w_;
}

AttentionImpl::AttentionImpl(const ModelConfig& cfg, const LayerWeights& w, int64_t layer)
    : layer_(layer),
      n_head_(cfg.n_head),
      n_head_kv_(cfg.n_head_kv),
      d_head_(cfg.d_head),
      spec_(cfg.layer(layer)),
      scale_(cfg.attn_scale > 0 ? cfg.attn_scale : 1.0 / std::sqrt(static_cast<double>(cfg.d_head))),
      softcap_(cfg.attn_softcap),
      clip_qkv_(cfg.clip_qkv),
      pairing_(spec_.local_rope && cfg.rope_local ? cfg.rope_local->pairing : cfg.rope.pairing),
      qk_norm_kind_(cfg.qk_norm),
      q_(w.q),
      k_(w.k),
      v_(w.v),
      o_(w.o),
      qkv_(w.qkv) {
  if (qk_norm_kind_ != QkNorm::kNone) {
    q_norm_ = register_module("q_norm", Norm(cfg.qk_norm_type, cfg.norm_eps, cfg.norm_plus_one, w.q_norm));
    k_norm_ = register_module("k_norm", Norm(cfg.qk_norm_type, cfg.norm_eps, cfg.norm_plus_one, w.k_norm));
  }
}

// Head dims up to this take fused_causal_attention when nobody asked for the pattern. Measured on
// this machine (8 kv heads x 4, fused vs matmul + causal_softmax_ + matmul, 1 thread): dh 8 at
// T 512 3.5 vs 21.1 ms, dh 32 at T 512 11.4 vs 27.9 ms, T 128 0.9 vs 1.1 ms; dh 64 at T 128 the
// matmuls win on 1 thread (1.9 vs 1.5 ms), the fused kernel on 2 (0.95 vs 1.31 ms). Whole forward
// passes at 2 threads, dh 64, cut-off 64 vs 32: GPT-2 bf16 T 512 0.226 vs 0.235 s, TinyLlama bf16
// T 128 0.36 vs 0.38 s, T 512 1.22 vs 1.27 s (two runs each, 2026-11-25).
constexpr int64_t kFusedAttentionMaxHeadDim = 64;

at::Tensor AttentionImpl::forward(const at::Tensor& x, const PosTables& pos, Hooks* hooks) {
  const int64_t B = x.size(0), T = x.size(1);
  at::Tensor q, k, v;
  if (qkv_.w.defined()) {
    const at::Tensor y = linear_f32(x, qkv_);  // (B, T, (H + 2 Hkv) dh): q | k | v
    q = y.narrow(-1, 0, n_head_ * d_head_);
    k = y.narrow(-1, n_head_ * d_head_, n_head_kv_ * d_head_);
    v = y.narrow(-1, (n_head_ + n_head_kv_) * d_head_, n_head_kv_ * d_head_);
  } else {
    q = linear_f32(x, q_);
    k = linear_f32(x, k_);
    v = linear_f32(x, v_);
  }
  if (clip_qkv_ > 0) {  // OLMo 1: clamp each projection (before any norm or rotation)
    q = q.clamp(-clip_qkv_, clip_qkv_);
    k = k.clamp(-clip_qkv_, clip_qkv_);
    v = v.clamp(-clip_qkv_, clip_qkv_);
  }
  if (qk_norm_kind_ == QkNorm::kWholeBeforeRope) {  // over all heads at once: (B, T, H*dh) and (B, T, Hkv*dh)
    q = q_norm_->forward(q);
    k = k_norm_->forward(k);
  }
  q = q.view({B, T, n_head_, d_head_}).transpose(1, 2);     // (B, H, T, dh)
  k = k.view({B, T, n_head_kv_, d_head_}).transpose(1, 2);  // (B, Hkv, T, dh)
  v = v.view({B, T, n_head_kv_, d_head_}).transpose(1, 2);  // (B, Hkv, T, dh)
  if (qk_norm_kind_ == QkNorm::kPerHeadBeforeRope) {
    q = q_norm_->forward(q);
    k = k_norm_->forward(k);
  }
  if (spec_.rotary) {
    const RopeTables& t = spec_.local_rope ? pos.local : pos.global;
    q = apply_rotary(q, t, pairing_);
    k = apply_rotary(k, t, pairing_);
  }
  if (qk_norm_kind_ == QkNorm::kPerHeadAfterRope) {
    q = q_norm_->forward(q);
    k = k_norm_->forward(k);
  }
  const int64_t rep = n_head_ / n_head_kv_;  // query heads per kv head (grouped-query attention)
  if (hooks != nullptr && (hooks->wants_block(layer_, "attn.hook_q") || hooks->wants_block(layer_, "attn.hook_k"))) {
    hooks->emit_block(layer_, "attn.hook_q", q);
    hooks->emit_block(layer_, "attn.hook_k", rep > 1 ? k.repeat_interleave(rep, 1) : k);  // (B, H, T, dh)
  }
  // Each kv head serves its `rep` query heads as one (rep * T, dh) x (dh, T) product: query heads
  // h = g * rep + r are consecutive, so q viewed as (B, Hkv, rep * T, dh) needs no copy of k or v.
  // Operands are made contiguous first: a transposed k view sends matmul down a path ~5x slower
  // (measured for stories260K's d_head 8). The scale goes on q, the smaller tensor.
  q = (q * scale_).contiguous().view({B, n_head_kv_, rep * T, d_head_});  // (B, Hkv, rep*T, dh)
  // Query i sees keys j <= i; with a sliding window only the last sliding_window of them (i - j < window).
  const int64_t window = spec_.window > 0 && T > spec_.window ? spec_.window : 0;
  const bool cpu_f32 = q.device().is_cpu() && q.scalar_type() == at::kFloat;
  // The fused kernel computes exp(q.k) directly and knows no soft-capping, so soft-capped layers
  // (Gemma 2) always materialise the scores; the capping costs one tanh per score there.
  const bool fused_ok = cpu_f32 && softcap_ == 0.0 && d_head_ <= kFusedAttentionMaxHeadDim;
  at::Tensor z;  // (B, H, T, dh)
  if (fused_ok && (hooks == nullptr || !hooks->wants_block(layer_, "attn.hook_pattern"))) {
    z = fused_causal_attention(q, k, v, window).view({B, n_head_, T, d_head_});
  } else {
    at::Tensor kt = k.transpose(-1, -2).contiguous();  // (B, Hkv, dh, T)
    at::Tensor scores = at::matmul(q, kt);             // (B, Hkv, rep*T, T)
    // Soft-capping of the scaled scores, before the mask as in transformers' eager attention.
    if (softcap_ > 0) scores.div_(softcap_).tanh_().mul_(softcap_);
    at::Tensor pattern;
    if (cpu_f32) {
      causal_softmax_(scores, window);
      pattern = scores;
    } else {
      at::Tensor masked = at::ones({T, T}, x.options().dtype(at::kBool)).triu(1);  // (T, T) true = hidden
      if (window > 0) masked.logical_or_(at::ones_like(masked).tril(-window));
      pattern = at::softmax(scores.view({B, n_head_, T, T}).masked_fill(masked, -std::numeric_limits<float>::infinity()), -1)
                    .view({B, n_head_kv_, rep * T, T});
    }
    if (hooks != nullptr) hooks->emit_block(layer_, "attn.hook_pattern", pattern.view({B, n_head_, T, T}));
    z = at::matmul(pattern, v.contiguous()).view({B, n_head_, T, d_head_});
  }
  z = z.transpose(1, 2).reshape({B, T, n_head_ * d_head_});  // (B, T, H*dh)
  return linear_f32(z, o_);
}

MlpImpl::MlpImpl(const ModelConfig& cfg, const LayerWeights& w)
    : kind_(cfg.mlp), up_(w.up), gate_(w.gate), down_(w.down) {
  if (kind_ == MlpKind::kXielu) {
    // (alpha_p, alpha_n, beta, eps) as stored -> the constants of the formula, in float32 as
    // transformers' XIELUActivation computes them for a float32 model.
    const at::Tensor p = w.act_params.to(at::kFloat);  // (4)
    const at::Tensor beta = p[2];
    act_params_ = at::stack({at::softplus(p[0]), beta + at::softplus(p[1]), beta, p[3]});
  }
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  at::Tensor h;
  switch (kind_) {
    case MlpKind::kGelu: h = at::gelu(linear_f32(x, up_)); break;
    case MlpKind::kGeluTanh: h = gelu_tanh(linear_f32(x, up_)); break;
    case MlpKind::kSwiGlu: h = at::silu(linear_f32(x, gate_)) * linear_f32(x, up_); break;
    case MlpKind::kGeGluTanh: h = gelu_tanh(linear_f32(x, gate_)) * linear_f32(x, up_); break;
    case MlpKind::kReluSquared: h = at::relu(linear_f32(x, up_)).square(); break;
    case MlpKind::kXielu: {
      // xIELU: x > 0: a_p x^2 + beta x; else (expm1(min(x, eps)) - x) a_n + beta x.
      const at::Tensor u = linear_f32(x, up_);
      const at::Tensor ap = act_params_[0], an = act_params_[1], beta = act_params_[2], eps = act_params_[3];
      h = at::where(u > 0, ap * u * u + beta * u, (at::expm1(at::minimum(u, eps)) - u) * an + beta * u);
      break;
    }
  }
  return linear_f32(h, down_);  // (B, T, d)
}

BlockImpl::BlockImpl(const ModelConfig& cfg, const LayerWeights& w, int64_t layer)
    : layer_(layer),
      parallel_(cfg.parallel_attn),
      placement_(cfg.norm_placement),
      residual_multiplier_(cfg.residual_multiplier) {
  // kPost blocks have only the norms after each sub-layer; they are stored in ln1 / ln2.
  ln1_ = register_module("ln1", Norm(cfg, w.ln1));
  ln2_ = register_module("ln2", Norm(cfg, w.ln2));
  if (placement_ == NormPlacement::kSandwich) {
    ln1_post_ = register_module("ln1_post", Norm(cfg, w.ln1_post));
    ln2_post_ = register_module("ln2_post", Norm(cfg, w.ln2_post));
  }
  attn_ = register_module("attn", Attention(cfg, w, layer));
  mlp_ = register_module("mlp", Mlp(cfg, w));
}

at::Tensor BlockImpl::forward(const at::Tensor& x, const PosTables& pos, Hooks* hooks) {
  auto emit = [&](const char* point, const at::Tensor& t) {
    if (hooks != nullptr) hooks->emit_block(layer_, point, t);
  };
  // What a sub-layer adds to the residual stream, given its input stream.
  auto attn_delta = [&](const at::Tensor& in) {
    at::Tensor y;
    switch (placement_) {
      case NormPlacement::kPre: y = attn_->forward(ln1_->forward(in), pos, hooks); break;
      case NormPlacement::kPost: y = ln1_->forward(attn_->forward(in, pos, hooks)); break;
      case NormPlacement::kSandwich: y = ln1_post_->forward(attn_->forward(ln1_->forward(in), pos, hooks)); break;
    }
    return residual_multiplier_ == 1.0 ? y : y * residual_multiplier_;
  };
  auto mlp_delta = [&](const at::Tensor& in) {
    at::Tensor y;
    switch (placement_) {
      case NormPlacement::kPre: y = mlp_->forward(ln2_->forward(in)); break;
      case NormPlacement::kPost: y = ln2_->forward(mlp_->forward(in)); break;
      case NormPlacement::kSandwich: y = ln2_post_->forward(mlp_->forward(ln2_->forward(in))); break;
    }
    return residual_multiplier_ == 1.0 ? y : y * residual_multiplier_;
  };
  emit("hook_resid_pre", x);
  at::Tensor attn_out = attn_delta(x);
  emit("hook_attn_out", attn_out);
  at::Tensor out;
  if (parallel_) {
    at::Tensor mlp_out = mlp_delta(x);
    emit("hook_mlp_out", mlp_out);
    out = x + attn_out + mlp_out;
  } else {
    at::Tensor mid = x + attn_out;
    emit("hook_resid_mid", mid);
    at::Tensor mlp_out = mlp_delta(mid);
    emit("hook_mlp_out", mlp_out);
    out = mid + mlp_out;
  }
  emit("hook_resid_post", out);
  return out;
}

}  // namespace lens
