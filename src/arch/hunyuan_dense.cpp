// HunYuan dense (HunYuanDenseV1ForCausalLM): the LLaMA layout with a per-head RMSNorm of queries
// and keys applied AFTER the rotation (query_layernorm / key_layernorm), and its own rope variant:
// rope_type "dynamic" with an "alpha" is a fixed NTK base, theta * alpha^(d/(d-2)), not
// transformers' length-dependent dynamic scaling.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_hunyuan(ConfigReader& c) {
  RopeDefaults rd;
  rd.alpha = true;
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false, rd);
  cfg.architecture = "hunyuan_v1_dense";
  cfg.hf_architecture = "HunYuanDenseV1ForCausalLM";
  read_silu_act(c, cfg, "HunYuan");
  cfg.qk_norm = QkNorm::kPerHeadAfterRope;
  c.ignore({"eod_token_id"});
  return cfg;
}

ModelWeights load_hunyuan(const Checkpoint& ck, const ModelConfig& cfg) {
  ModelConfig plain = cfg;
  plain.qk_norm = QkNorm::kNone;  // its q/k norms have their own names
  ModelWeights w = load_llama_like(ck, plain);
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".self_attn.";
    w.layers[l].q_norm.w = ck.get(b + "query_layernorm.weight", {cfg.d_head});
    w.layers[l].k_norm.w = ck.get(b + "key_layernorm.weight", {cfg.d_head});
  }
  return w;
}

}  // namespace

ArchSpec hunyuan_dense_arch() {
  return {"hunyuan_v1_dense", {"HunYuanDenseV1ForCausalLM"}, parse_hunyuan, load_hunyuan};
}

}  // namespace lens
