// Arcee / AFM (ArceeForCausalLM): the LLaMA layout with an ungated MLP, down(relu(up(x))^2)
// (hidden_act "relu2"), and usually YaRN rope scaling.
#include "arch/arch.h"
#include "lens/error.h"

namespace lens {
namespace {

ModelConfig parse_arcee(ConfigReader& c) {
  ModelConfig cfg = parse_llama_like(c, /*default_tied=*/false);
  cfg.architecture = "arcee";
  cfg.hf_architecture = "ArceeForCausalLM";
  const std::string act = cfg_str_or(c, "hidden_act", "relu2");
  if (act != "relu2") throw ModelError("config.json: hidden_act '" + act + "' is not supported for Arcee (relu2 only)");
  cfg.mlp = MlpKind::kReluSquared;
  return cfg;
}

}  // namespace

ArchSpec arcee_arch() { return {"arcee", {"ArceeForCausalLM"}, parse_arcee, load_llama_like}; }

}  // namespace lens
