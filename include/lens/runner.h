// One prompt from input to result document: tokenize (or take ids), validate against the model,
// run each lens, and assemble the RunDocument. Shared by `lens run` and batch runs, so a prompt
// gives the same record whichever way it was run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lens/lens.h"
#include "lens/model.h"
#include "lens/output.h"
#include "lens/tokenizer.h"

namespace lens {

struct PromptInput {
  std::optional<std::string> text;  // tokenized with the model's tokenizer when set
  std::vector<int64_t> ids;         // used when text is not set
  bool add_special = true;          // BOS etc. as the tokenizer config says
};

/// The prompt's token ids, validated: non-empty, inside the vocabulary, within the context.
/// Throws InputError (bad prompt) or ModelError (text given but no tokenizer).
std::vector<int64_t> prompt_ids(const Model& model, const Tokenizer* tok, const PromptInput& in);

/// "[id]" without a tokenizer, else the tokenizer's display text.
TokenNamer make_namer(const Tokenizer* tok);

ModelInfo model_info(const Model& model, const std::string& name);

/// Runs every lens in `lenses` on the prompt and returns the document; with `attention`, also
/// captures attention during the first lens's forward pass.
RunDocument run_prompt(Model& model, const Tokenizer* tok, const std::string& model_name,
                       const std::vector<const Lens*>& lenses, const PromptInput& in, const LensOptions& opts,
                       const AttentionOptions* attention = nullptr);

}  // namespace lens
