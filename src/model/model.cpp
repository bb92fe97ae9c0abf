// The decoder: embed -> blocks -> final norm -> unembed, with hook points
// ("hook_embed", "hook_pos_embed", per-block points, "ln_final.hook_normalized").
// Loading resolves the architecture, maps weights, and casts them to the requested dtype.
#include "lens/model.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "arch/arch.h"
#include "io/checkpoint.h"
#include "lens/error.h"
#include "nn/layers.h"

namespace lens {

namespace fs = std::filesystem;

class ModelImpl : public torch::nn::Module {
 public:
  ModelImpl(const ModelConfig& cfg, ModelWeights w) : cfg_(cfg), w_(std::move(w)) {
    ln_f_ = register_module("ln_f", Norm(cfg_, w_.ln_f));
    if (cfg_.pos == PosKind::kRotary) rope_ = std::make_unique<RopeCache>(cfg_.rope);
    if (cfg_.rope_local) rope_local_ = std::make_unique<RopeCache>(*cfg_.rope_local);
    for (int64_t l = 0; l < cfg_.n_layer; ++l)
      blocks_.push_back(register_module("block" + std::to_string(l), Block(cfg_, w_.layers[l], l)));
    w_.layers.clear();  // the blocks hold their weights now
  }

  at::Tensor embed(const at::Tensor& ids, Hooks* hooks) {
    at::Tensor x = at::embedding(w_.tok_embed, ids).to(at::kFloat);  // (B, T, d)
    if (cfg_.embed_scale != 1.0) {
      // transformers (Gemma) rounds the scale to the model dtype: sqrt(3072) is 55.5 in bf16.
      double scale = cfg_.embed_scale;
      if (cfg_.embed_scale_in_dtype)
        scale = at::scalar_tensor(scale, at::TensorOptions().dtype(w_.tok_embed.scalar_type())).item<double>();
      x = x * scale;
    }
    if (hooks != nullptr) hooks->emit("hook_embed", x);
    if (cfg_.pos == PosKind::kLearned) {
      at::Tensor p = w_.pos_embed.narrow(0, 0, ids.size(1)).to(at::kFloat);  // (T, d)
      if (hooks != nullptr) hooks->emit("hook_pos_embed", p);
      x = x + p;
    }
    return x;
  }

  ModelConfig cfg_;
  ModelWeights w_;
  PosTables pos_tables(int64_t T, const at::Device& dev) {
    PosTables t;
    if (rope_) t.global = rope_->tables(T, dev);
    if (rope_local_) t.local = rope_local_->tables(T, dev);
    return t;
  }

  Norm ln_f_{nullptr};
  std::unique_ptr<RopeCache> rope_, rope_local_;
  std::vector<Block> blocks_;
  uint64_t ck_bytes_ = 0;
  fs::path dir_;
};

namespace {

at::ScalarType pick_dtype(const std::string& requested, const std::string& ck_dtype, bool cuda) {
  if (requested == "float32") return at::kFloat;
  if (requested == "bfloat16") return at::kBFloat16;
  if (requested == "float16") {
    // libtorch's CPU kernels have no fast (or, in 1.13, any) float16 matmul.
    if (!cuda) throw UsageError("--dtype float16 needs --device cuda; on CPU use bfloat16 or float32");
    return at::kHalf;
  }
  if (requested != "auto") throw UsageError("unknown --dtype '" + requested + "' (auto, float32, bfloat16, float16)");
  if (ck_dtype == "BF16") return at::kBFloat16;
  if (ck_dtype == "F16") return cuda ? at::kHalf : at::kFloat;
  return at::kFloat;
}

// Casts/moves a weight; keeps the zero-copy view when nothing changes. Reduced-precision weights
// are made contiguous: libtorch 1.13 multiplies a transposed bfloat16 operand (GPT-2's Conv1D views)
// on a path that loses accuracy; measured on v5-gpt2 (bench/bf16_fidelity.py), logits 2.3x further
// from the float64 reference than transformers' own bfloat16 run, and 0.8x of it once contiguous.
at::Tensor place(const at::Tensor& t, at::ScalarType dt, const at::Device& dev) {
  if (!t.defined()) return t;
  const bool reduced = dt == at::kBFloat16 || dt == at::kHalf;
  if (t.scalar_type() == dt && t.device() == dev && (t.is_contiguous() || !reduced)) return t;
  at::Tensor out = t.to(dev, dt);
  return reduced ? out.contiguous() : out;
}

void place_linear(LinearWeights& l, at::ScalarType dt, const at::Device& dev) {
  l.w = place(l.w, dt, dev);
  l.b = place(l.b, dt, dev);
}

}  // namespace

std::shared_ptr<Model> Model::load(const fs::path& dir, const LoadOptions& opts) {
  const fs::path cfg_path = dir / "config.json";
  if (!fs::is_directory(dir)) throw ModelError(dir.string() + ": not a directory");
  if (!fs::exists(cfg_path)) throw ModelError(dir.string() + ": no config.json (not a Hugging Face checkpoint directory)");
  nlohmann::json cj;
  try {
    std::ifstream in(cfg_path);
    cj = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(cfg_path.string() + ": not valid JSON: " + e.what());
  }
  const ArchSpec* arch = find_arch(cj);
  if (arch == nullptr) {
    std::string got = cj.contains("architectures") ? cj["architectures"].dump() : cj.value("model_type", "(none)");
    throw ModelError(cfg_path.string() + ": unsupported architecture " + got +
                     "; supported: " + supported_architectures());
  }
  ModelConfig cfg;
  try {
    cfg = parse_model_config(*arch, cj);
  } catch (const ModelError& e) {
    throw ModelError(dir.string() + "/" + e.what());
  }
  if (opts.strict && !cfg.ignored_keys.empty()) {
    std::string keys;
    for (const auto& k : cfg.ignored_keys) keys += (keys.empty() ? "" : ", ") + k;
    throw ModelError(cfg_path.string() + ": --strict: keys lens does not know would be ignored: " + keys);
  }
  Checkpoint ck = Checkpoint::open(dir);
  ModelWeights w = arch->load_weights(ck, cfg);

  at::Device dev(opts.device);
  if (dev.is_cuda() && !at::hasCUDA()) throw UsageError("--device " + opts.device + ": this build of libtorch has no CUDA");
  const at::ScalarType dt = pick_dtype(opts.dtype, ck.main_dtype(), dev.is_cuda());
  const bool tied = w.unembed.w.is_same(w.tok_embed);
  w.tok_embed = place(w.tok_embed, dt, dev);
  w.pos_embed = place(w.pos_embed, at::kFloat, dev);
  for (auto& lw : w.layers) {
    for (LinearWeights* l : {&lw.q, &lw.k, &lw.v, &lw.qkv, &lw.o, &lw.up, &lw.gate, &lw.down}) place_linear(*l, dt, dev);
    for (NormWeights* n : {&lw.ln1, &lw.ln2, &lw.q_norm, &lw.k_norm, &lw.ln1_post, &lw.ln2_post})
      *n = {place(n->w, at::kFloat, dev), place(n->b, at::kFloat, dev)};
    lw.act_params = place(lw.act_params, at::kFloat, dev);
  }
  w.ln_f = {place(w.ln_f.w, at::kFloat, dev), place(w.ln_f.b, at::kFloat, dev)};
  w.unembed.w = tied ? w.tok_embed : place(w.unembed.w, dt, dev);
  w.unembed.b = place(w.unembed.b, dt, dev);

  std::shared_ptr<Model> m(new Model());
  m->impl_ = std::make_unique<ModelImpl>(cfg, std::move(w));
  m->impl_->to(dev);
  m->impl_->ck_bytes_ = ck.data_bytes();
  m->impl_->dir_ = dir;
  return m;
}

Model::~Model() = default;

const ModelConfig& Model::config() const { return impl_->cfg_; }
const fs::path& Model::dir() const { return impl_->dir_; }
at::ScalarType Model::dtype() const { return impl_->w_.tok_embed.scalar_type(); }
std::string Model::dtype_name() const {
  switch (dtype()) {
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: return "float32";
  }
}
at::Device Model::device() const { return impl_->w_.tok_embed.device(); }
uint64_t Model::checkpoint_bytes() const { return impl_->ck_bytes_; }

at::Tensor Model::forward(const at::Tensor& ids, Hooks* hooks, const at::Tensor& logit_positions, bool native_logits) {
  TORCH_CHECK(ids.dim() == 2, "forward expects ids of shape (B, T), got ", ids.sizes());
  const auto& cfg = impl_->cfg_;
  if (!cfg.runs_past_context() && ids.size(1) > cfg.n_ctx)
    throw InputError("sequence of " + std::to_string(ids.size(1)) + " tokens is longer than the model's context (" +
                     std::to_string(cfg.n_ctx) + ")");
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= cfg.vocab_size))
    throw InputError("token id out of range [0, " + std::to_string(cfg.vocab_size) + ")");
  at::Tensor x = impl_->embed(ids.to(device()), hooks);  // (B, T, d)
  const PosTables pos = impl_->pos_tables(ids.size(1), device());
  for (auto& block : impl_->blocks_) x = block->forward(x, pos, hooks);
  if (logit_positions.defined()) x = x.index_select(1, logit_positions.to(device()));  // (B, P, d)
  at::Tensor normed = final_norm(x);
  if (hooks != nullptr) hooks->emit("ln_final.hook_normalized", normed);
  return unembed(normed, native_logits);
}

at::Tensor Model::final_norm(const at::Tensor& resid) const { return impl_->ln_f_->forward(resid); }

// Rows per unembedding product for bfloat16/float16 weights on the CPU: the product is done in
// blocks of about this many bytes of float32 logits. Without native bfloat16 arithmetic, libtorch's
// bfloat16 matmul holds a float32 buffer the size of its output besides the output itself: a
// (512, 2048) x (2048, 32000) product peaked 79 MiB above its 31 MiB result (Ice Lake Xeon, torch
// 1.13). Blocks bound that for long prompts: TinyLlama bf16 at 512 tokens, peak RSS 1.23 -> 1.196x
// its weights in bench/run_bench.py; the product's speed there is the same at 131, 262 or 512 rows
// (63-65 GFLOP/s).
constexpr int64_t kUnembedBlockBytes = 16ll << 20;

at::Tensor Model::unembed(const at::Tensor& normed, bool native) const {
  const LinearWeights& u = impl_->w_.unembed;
  const bool blocked = normed.device().is_cpu() && u.w.scalar_type() != at::kFloat;  // float32: one product
  const int64_t block_rows = blocked ? std::max<int64_t>(1, kUnembedBlockBytes / (u.w.size(0) * 4))
                                     : std::numeric_limits<int64_t>::max();
  at::Tensor y = linear_native_blocked(normed, u, block_rows);
  // Granite divides its logits by logits_scaling, in the logits' dtype as transformers does; the
  // lens reads every layer through this same function, so the final-layer check covers it (and the
  // soft-capping below).
  if (impl_->cfg_.logits_divisor != 1.0) y.div_(impl_->cfg_.logits_divisor);
  if (impl_->cfg_.logit_scale != 1.0) y.mul_(impl_->cfg_.logit_scale);  // Cohere
  // Final logit soft-capping (Gemma 2/3: tanh(logits / cap) * cap), also in the logits' dtype.
  if (impl_->cfg_.final_softcap > 0) y.div_(impl_->cfg_.final_softcap).tanh_().mul_(impl_->cfg_.final_softcap);
  return native || y.scalar_type() == at::kFloat ? y : y.to(at::kFloat);
}

}  // namespace lens
