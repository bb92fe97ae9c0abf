// Falcon (FalconForCausalLM): LayerNorms with bias, rotate_half RoPE, an ungated MLP
// dense_4h_to_h(act(dense_h_to_4h(x))) (activation, default exact gelu), biases with `bias`, a tied
// head by default, in the three layouts transformers 5.23 builds:
// - multi_query (Falcon-7B): one key/value head; query_key_value rows q (H*dh) | k (dh) | v (dh);
// - new_decoder_architecture (Falcon-40B/180B): num_kv_heads groups, rows per group
//   [q_1 .. q_rep | k | v]; two norms ln_attn / ln_mlp (num_ln_in_parallel_attn 2, the default) or one;
// - neither (Falcon-RW style): rows per head [q_h | k_h | v_h], as GPT-NeoX.
// parallel_attn: x + attn(ln(x)) + mlp(ln'(x)); else sequential with post_attention_layernorm.
// The fused rows are regrouped at load into q | k | v by a copy where the layout interleaves them.
// ALiBi (alibi: true) is refused: lens implements rotary and learned positions only.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_falcon(ConfigReader& c) {
  ModelConfig cfg;
  cfg.architecture = "falcon";
  cfg.hf_architecture = "FalconForCausalLM";
  cfg.n_layer = cfg_int(c, "num_hidden_layers");
  cfg.d_model = c.has("n_embed") ? cfg_int(c, "n_embed") : cfg_int(c, "hidden_size");  // old configs: n_embed
  c.raw("hidden_size");
  cfg.n_head = cfg_int(c, "num_attention_heads");
  if (cfg.n_layer <= 0 || cfg.n_head <= 0 || cfg.d_model % cfg.n_head != 0)
    throw ModelError("config.json: hidden_size must be a positive multiple of num_attention_heads");
  cfg.d_head = cfg.d_model / cfg.n_head;
  const bool new_arch = cfg_bool_or(c, "new_decoder_architecture", false);
  const bool multi_query = cfg_bool_or(c, "multi_query", true);
  const int64_t kv = cfg_int_or(c, "num_kv_heads", cfg.n_head);
  cfg.n_head_kv = new_arch ? kv : multi_query ? 1 : cfg.n_head;
  if (cfg.n_head_kv <= 0 || cfg.n_head % cfg.n_head_kv != 0)
    throw ModelError("config.json: num_attention_heads must be a multiple of num_kv_heads");
  cfg.d_mlp = cfg_int_or(c, "ffn_hidden_size", 4 * cfg.d_model);
  cfg.vocab_size = cfg_int(c, "vocab_size");
  cfg.n_ctx = cfg_int_or(c, "max_position_embeddings", 2048);
  cfg.norm = NormKind::kLayerNorm;
  cfg.norm_eps = cfg_num_or(c, "layer_norm_epsilon", 1e-5);
  const std::string act = cfg_str_or(c, "activation", "gelu");
  if (act == "gelu") {
    cfg.mlp = MlpKind::kGelu;
  } else if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    cfg.mlp = MlpKind::kGeluTanh;
  } else {
    throw ModelError("config.json: activation '" + act + "' is not supported for Falcon (gelu, gelu_new)");
  }
  if (cfg_bool_or(c, "alibi", false))
    throw ModelError("config.json: alibi is true; lens implements rotary and learned positions only (no ALiBi)");
  cfg.pos = PosKind::kRotary;
  cfg.rope = read_rope(c, RopeDefaults{});
  cfg.rope.rotary_dim = cfg.d_head;
  if (cfg.rope.partial_rotary_factor != 1.0)
    throw ModelError("config.json: partial_rotary_factor is not used by Falcon's attention in transformers");
  cfg.qkv_bias = cfg.o_bias = cfg.mlp_bias = cfg_bool_or(c, "bias", false);
  cfg.parallel_attn = cfg_bool_or(c, "parallel_attn", true);
  if (new_arch && !cfg.parallel_attn)
    throw ModelError("config.json: new_decoder_architecture with parallel_attn false does not run in transformers");
  cfg.tied_embeddings = cfg_bool_or(c, "tie_word_embeddings", true);
  // num_ln_in_parallel_attn: read by the loader through the norm names it finds (ln_attn / ln_mlp).
  const int64_t n_ln = cfg_int_or(c, "num_ln_in_parallel_attn", new_arch ? 2 : 1);
  if (n_ln != 1 && n_ln != 2) throw ModelError("config.json: num_ln_in_parallel_attn must be 1 or 2");
  cfg.bos_id = cfg_opt_int(c, "bos_token_id");
  cfg.eos_id = cfg_opt_int(c, "eos_token_id");
  return cfg;
}

ModelWeights load_falcon(const Checkpoint& ck, const ModelConfig& cfg) {
  const int64_t d = cfg.d_model, f = cfg.d_mlp, H = cfg.n_head, Hkv = cfg.n_head_kv, dh = cfg.d_head;
  const int64_t rep = H / Hkv;
  const bool bias = cfg.qkv_bias;
  auto lin = [&](const std::string& name, int64_t out, int64_t in) {
    LinearWeights lw{ck.get(name + ".weight", {out, in}), {}};
    if (bias) lw.b = ck.get(name + ".bias", {out});
    return lw;
  };
  auto norm = [&](const std::string& name) {
    return NormWeights{ck.get(name + ".weight", {d}), ck.get(name + ".bias", {d})};
  };
  ModelWeights w;
  w.tok_embed = ck.get("transformer.word_embeddings.weight", {cfg.vocab_size, d});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "transformer.h." + std::to_string(l) + ".";
    LayerWeights lw;
    if (ck.has(b + "ln_attn.weight")) {  // new_decoder_architecture with two parallel norms
      lw.ln1 = norm(b + "ln_attn");
      lw.ln2 = norm(b + "ln_mlp");
    } else {
      lw.ln1 = norm(b + "input_layernorm");
      lw.ln2 = cfg.parallel_attn ? lw.ln1 : norm(b + "post_attention_layernorm");
    }
    const LinearWeights qkv = lin(b + "self_attention.query_key_value", (H + 2 * Hkv) * dh, d);
    if (Hkv == 1 && rep == H) {
      lw.qkv = qkv;  // multi-query: rows already q | k | v
    } else {
      // Rows grouped per kv head: [q_1 .. q_rep | k | v] (rep = 1 for the per-head layout), viewed as
      // (Hkv, rep + 2, dh, d) and gathered into contiguous q, k, v.
      auto part = [&](int64_t start, int64_t n) {
        LinearWeights out;
        out.w = qkv.w.view({Hkv, rep + 2, dh, d}).narrow(1, start, n).reshape({Hkv * n * dh, d}).contiguous();
        if (qkv.b.defined())
          out.b = qkv.b.view({Hkv, rep + 2, dh}).narrow(1, start, n).reshape({Hkv * n * dh}).contiguous();
        return out;
      };
      lw.q = part(0, rep);
      lw.k = part(rep, 1);
      lw.v = part(rep + 1, 1);
    }
    lw.o = lin(b + "self_attention.dense", d, d);
    lw.up = lin(b + "mlp.dense_h_to_4h", f, d);
    lw.down = lin(b + "mlp.dense_4h_to_h", d, f);
    w.layers.push_back(lw);
  }
  w.ln_f = norm("transformer.ln_f");
  w.unembed.w = cfg.tied_embeddings ? w.tok_embed : ck.get("lm_head.weight", {cfg.vocab_size, d});
  return w;
}

}  // namespace

ArchSpec falcon_arch() { return {"falcon", {"FalconForCausalLM"}, parse_falcon, load_falcon}; }

}  // namespace lens
