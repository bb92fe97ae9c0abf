// Prompt -> RunDocument (see lens/runner.h).
#include "lens/runner.h"

#include "lens/error.h"

namespace lens {

std::vector<int64_t> prompt_ids(const Model& model, const Tokenizer* tok, const PromptInput& in) {
  const ModelConfig& cfg = model.config();
  std::vector<int64_t> ids;
  if (in.text) {
    if (in.text->empty()) throw InputError("empty prompt");
    if (tok == nullptr)
      throw ModelError(model.dir().string() + " has no tokenizer files (tokenizer.model, tokenizer.json, "
                       "vocab.json + merges.txt); pass token ids instead of a prompt");
    ids = tok->encode(*in.text, in.add_special);
    if (ids.empty()) throw InputError("the prompt encodes to no tokens");
  } else {
    ids = in.ids;
    if (ids.empty()) throw InputError("empty prompt: no token ids");
  }
  for (int64_t id : ids)
    if (id < 0 || id >= cfg.vocab_size)
      throw InputError("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                       std::to_string(cfg.vocab_size) + ")");
  if (!cfg.runs_past_context() && static_cast<int64_t>(ids.size()) > cfg.n_ctx)
    throw InputError("the prompt is " + std::to_string(ids.size()) + " tokens, longer than the model's context of " +
                     std::to_string(cfg.n_ctx));
  return ids;
}

TokenNamer make_namer(const Tokenizer* tok) {
  return [tok](int64_t id) { return tok != nullptr ? tok->token_text(id) : "[" + std::to_string(id) + "]"; };
}

ModelInfo model_info(const Model& model, const std::string& name) {
  const ModelConfig& c = model.config();
  return {name,     model.dir().string(), c.architecture, c.n_layer,          c.d_model,
          c.n_head, c.vocab_size,         model.dtype_name(), c.ignored_keys};
}

RunDocument run_prompt(Model& model, const Tokenizer* tok, const std::string& model_name,
                       const std::vector<const Lens*>& lenses, const PromptInput& in, const LensOptions& opts,
                       const AttentionOptions* attention) {
  RunDocument doc;
  doc.model = model_info(model, model_name);
  const std::vector<int64_t> ids = prompt_ids(model, tok, in);
  if (in.text) doc.prompt = *in.text;
  const TokenNamer namer = make_namer(tok);
  for (int64_t id : ids) doc.tokens.push_back({id, namer(id)});
  if (attention != nullptr) {
    Hooks hooks;
    AttentionRecorder rec(model.config(), *attention, hooks);
    doc.lenses = run_lenses(model, lenses, ids, opts, &hooks);
    doc.attention = rec.take();
  } else {
    doc.lenses = run_lenses(model, lenses, ids, opts);
  }
  return doc;
}

}  // namespace lens
