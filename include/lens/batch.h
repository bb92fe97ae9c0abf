// Many prompts through one loaded model: prompts of different lengths are right-padded into one
// (B, T_max) forward pass (with causal attention a padded position never influences a real one),
// and each layer's lens logits for all prompts are reduced together by reduce_layer. Results equal
// run_lens / run_prompt one prompt at a time, within float32 round-off. Files and progress are the
// CLI's business (tools/lens/batch.cpp); this only computes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lens/lens.h"
#include "lens/runner.h"

namespace lens {

/// run_lens for several prompts at once. `opts` holds one LensOptions per prompt: positions and
/// targets may differ, top_k, layers and keep_logprobs must agree (UsageError otherwise).
/// Throws like run_lens for an invalid prompt; validate first (run_prompts does) to keep the others.
std::vector<LensResult> run_lens_batch(Model& model, const Lens& lens, const std::vector<std::vector<int64_t>>& ids,
                                       const std::vector<LensOptions>& opts);

/// One prompt of a batch: its input and its options (run_lens_batch's rules apply).
struct BatchPrompt {
  PromptInput in;
  LensOptions opts;
};

/// The result for one prompt: a document, or why the prompt could not be run.
struct BatchOutcome {
  std::optional<RunDocument> doc;
  std::string error_code;  // empty_prompt, too_long, out_of_vocabulary, bad_positions, bad_target, invalid_input
  std::string error_message;
};

/// run_prompt for each prompt, batched through the model. A prompt that cannot be run (empty, too
/// long, token ids outside the vocabulary, positions it does not have) gives an outcome with an
/// error and the others go on; a ModelError (e.g. text prompts without a tokenizer) is thrown.
std::vector<BatchOutcome> run_prompts(Model& model, const Tokenizer* tok, const std::string& model_name,
                                      const std::vector<const Lens*>& lenses, const std::vector<BatchPrompt>& prompts);

}  // namespace lens
