// Text corpora for training and evaluating lenses: documents from plain text or JSONL files,
// tokenized with the model's tokenizer and packed GPT-style into fixed-length sequences (the
// tuned-lens package's chunk_and_tokenize: BOS and EOS first, EOS between documents, the last
// sequence of each group of 2048 documents dropped). No shuffling here; the trainer orders them.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lens/tokenizer.h"

namespace lens {

struct TextDataOptions {
  std::string text_field = "text";          // JSONL: the string field holding a document
  std::string separator = "<|endoftext|>";  // plain text: splits a file into documents ("" = one per file)
};

/// Documents of `files`: a file ending in .jsonl holds one JSON object per line with a string field
/// `text_field`; any other file is UTF-8 text split on `separator`. Documents are trimmed of
/// surrounding whitespace; empty ones are dropped. Throws InputError naming the file (and line)
/// for a missing file, a bad JSON line or a missing field, and when no document is found at all.
std::vector<std::string> read_documents(const std::vector<std::filesystem::path>& files, const TextDataOptions& opts);

struct PackedData {
  at::Tensor sequences;     // (N, seq_len) int64 token ids
  int64_t n_tokens = 0;     // tokens in the packed stream, separators included, before dropping the tail
  int64_t n_bytes = 0;      // UTF-8 bytes of the documents
  /// Nats per token -> bits per byte: (n_tokens / n_bytes) / ln 2 (as the package computes it).
  double nats_to_bpb() const;
};

/// Documents per packing group: the package's datasets.map batch size.
constexpr size_t kPackGroupDocs = 2048;

/// The tuned-lens package's chunk_and_tokenize, token for token: per group of kPackGroupDocs
/// documents, the stream [BOS] EOS d0 EOS d1 ... (BOS only if the tokenizer adds one with special
/// tokens on; each document tokenized on its own without special tokens) is cut into sequences of
/// `seq_len` tokens and the group's last sequence is dropped, full or not. Throws InputError when
/// not even one sequence results.
PackedData pack_documents(const std::vector<std::string>& docs, const Tokenizer& tok, int64_t eos_id,
                          int64_t seq_len);

/// Splits packed data into its first (1 - fraction) and last `fraction` of sequences (at least one
/// sequence each when fraction > 0). Throws UsageError when that leaves either side empty.
std::pair<PackedData, PackedData> split_tail(const PackedData& data, double fraction);

}  // namespace lens
