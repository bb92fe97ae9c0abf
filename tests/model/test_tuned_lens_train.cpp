// Tuned-lens training on a real small model: stories260K trained on a slice of TinyStories and
// evaluated on a disjoint slice. A short run (seconds on 2 cores) must bring the tuned lens's
// held-out KL to the final layer below the logit lens's at every layer but the last, where both
// are the model's own output.
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "lens/lens_eval.h"
#include "lens/model.h"
#include "lens/text_data.h"
#include "lens/tokenizer.h"
#include "lens/train.h"
#include "lens/tuned_lens.h"
#include "test_util.h"

namespace lens {
namespace {

namespace fs = std::filesystem;

TEST(TunedLensTrain, Stories260KHeldOutKlBelowLogitLens) {
  const fs::path model_dir = test::shared_dir() / "models" / "stories260K";
  const fs::path corpus = test::shared_dir() / "corpus" / "tinystories" / "tinystories_train_first2MiB.complete.txt";
  LENS_REQUIRE_SHARED(model_dir);
  LENS_REQUIRE_SHARED(corpus);
  auto model = Model::load(model_dir);
  auto tok = load_tokenizer(model_dir);
  ASSERT_TRUE(tok);
  const int64_t L = model->config().n_layer;

  // Stories 0..599 train, 2000..2099 held out: disjoint slices of the corpus.
  std::vector<std::string> docs = read_documents({corpus}, TextDataOptions{});
  ASSERT_GT(docs.size(), 2200u);
  std::vector<std::string> train_docs(docs.begin(), docs.begin() + 600), val_docs(docs.begin() + 2000, docs.begin() + 2100);
  const int64_t eos = *tok->eos_id();
  PackedData train = pack_documents(train_docs, *tok, eos, 128);
  PackedData val = pack_documents(val_docs, *tok, eos, 128);

  TrainOptions opts;
  opts.steps = 30;
  opts.tokens_per_step = 2048;  // 16 sequences of 128
  opts.batch_size = 16;
  opts.output = fs::temp_directory_path() / ("lens_train_model_" + std::to_string(::getpid()));
  fs::remove_all(opts.output);
  TunedLens lens(*model, model_dir.string());
  const auto t0 = std::chrono::steady_clock::now();
  TrainResult r = train_tuned_lens(*model, lens, train.sequences, opts);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.finished);
  std::cout << "trained " << opts.steps << " steps on " << r.tokens << " tokens (" << train.sequences.size(0)
            << " sequences) in " << secs << " s: " << r.tokens / secs << " tokens/s\n";

  LogitLens logit(*model);
  EvalResult ev = evaluate_lenses(*model, {&logit, &lens}, val.sequences, 16, val.nats_to_bpb());
  std::cout << "held-out (" << ev.n_sequences << " x " << ev.seq_len << "):\n" << eval_table(ev);
  for (int64_t l = 0; l < L; ++l)
    EXPECT_LT(ev.lenses[1].layers[l].kl, ev.lenses[0].layers[l].kl) << "layer " << l;
  // Last layer: both are the model's output.
  EXPECT_LT(ev.lenses[0].layers[L].kl, 1e-6);
  EXPECT_LT(ev.lenses[1].layers[L].kl, 1e-6);

  // The saved lens reloads to the trained one.
  auto back = TunedLens::load(*model, opts.output);
  for (int64_t i = 0; i < L; ++i) EXPECT_TRUE(back->translator(i).weight.equal(lens.translator(i).weight));
  fs::remove_all(opts.output);
}

}  // namespace
}  // namespace lens
