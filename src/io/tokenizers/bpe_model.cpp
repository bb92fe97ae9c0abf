// HF `models::bpe`: the vocabulary and merge tables, a word's initial symbols (bytes or characters, with
// continuing_subword_prefix / end_of_word_suffix, byte_fallback and unk), the merge loop in HF's order, and the
// per-word cache. Not here: dropout (refused), training.
#include <queue>

#include "io/tokenizers/pipeline.h"
#include "io/tokenizers/unicode.h"
#include "lens/error.h"

namespace lens::tok {

// Resolves merges to ids: merge i joins (left, right), rank i, into left + right less right's
// continuing_subword_prefix. `where(i)` names merge i in errors. The lookups land on random slots of
// tables larger than the cache, so the hashes are computed first and each slot is prefetched kAhead merges
// before it is needed: this halved Gemma 3's load time.
void add_merges(Impl& m, const MergeTexts& t, const std::function<std::string(size_t)>& where) {
  constexpr size_t kAhead = 16;
  const size_t n = t.pairs.size();
  if (n > static_cast<size_t>(INT32_MAX)) throw ModelError(where(0) + ": too many merges");
  auto merged_right = [&](std::string_view right) {
    if (!m.prefix.empty() && right.substr(0, m.prefix.size()) == m.prefix) right.remove_prefix(m.prefix.size());
    return right;
  };
  struct Hashes {
    uint32_t left, right, merged;
  };
  std::vector<Hashes> hashes(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string_view a = t.left(t.pairs[i]), b = t.right(t.pairs[i]);
    hashes[i] = {Vocab::hash(a), Vocab::hash(b), Vocab::hash(a, merged_right(b))};
  }
  struct Ids {
    int32_t left, right, merged;
  };
  std::vector<Ids> ids(n);
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) {
      const Hashes& h = hashes[i + kAhead];
      m.vocab.prefetch(h.left);
      m.vocab.prefetch(h.right);
      m.vocab.prefetch(h.merged);
    }
    const std::string_view a = t.left(t.pairs[i]), b = t.right(t.pairs[i]);
    ids[i] = {m.vocab.find_hashed(hashes[i].left, a, {}), m.vocab.find_hashed(hashes[i].right, b, {}),
              m.vocab.find_hashed(hashes[i].merged, a, merged_right(b))};
    const Ids& r = ids[i];
    if (r.left < 0 || r.right < 0 || r.merged < 0) {
      const std::string token = r.left < 0    ? std::string(a)
                                : r.right < 0 ? std::string(b)
                                              : std::string(a) + std::string(merged_right(b));
      throw ModelError(where(i) + ": merge token '" + token + "' is not in the vocabulary");
    }
  }
  m.merges.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) m.merges.prefetch(ids[i + kAhead].left, ids[i + kAhead].right);
    m.merges.set(ids[i].left, ids[i].right, Merge{static_cast<int32_t>(i), ids[i].merged});
  }
}

// Indexes the vocabulary as read. Slots are random places in a table larger than the cache, so each one is
// prefetched kAhead entries before it is written.
void add_vocab(Impl& m, const VocabEntries& v) {
  constexpr size_t kAhead = 16;
  m.vocab.reserve(v.entries.size());
  for (size_t i = 0; i < v.entries.size(); ++i) {
    if (i + kAhead < v.entries.size()) m.vocab.prefetch(v.entries[i + kAhead].hash);
    const VocabEntries::Entry& e = v.entries[i];
    m.vocab.set_hashed(e.hash, v.piece(e), e.id);
  }
}

}  // namespace lens::tok

namespace lens {

using namespace tok;  // NOLINT

// Initial symbols of a byte-level word: one per byte, through the byte -> id table (prefix / suffix
// already folded in); byte_fallback and unk as in initial_symbols_chars.
void BpeTokenizer::Impl::initial_symbols_bytes(std::string_view word, std::vector<int32_t>& ids) const {
  int32_t pending_unk = -1;  // an unk token not yet added (fuse_unk merges runs of unknown characters)
  for (size_t i = 0; i < word.size(); ++i) {
    const bool first = i == 0, last = i + 1 == word.size();
    const auto b = static_cast<unsigned char>(word[i]);
    const int32_t id = byte_ids[(first ? 1 : 0) + (last ? 2 : 0)][b];
    if (id >= 0) {
      if (pending_unk >= 0) ids.push_back(pending_unk), pending_unk = -1;
      ids.push_back(id);
      continue;
    }
    if (byte_fallback) {  // <0xNN> tokens for each byte of the symbol's text, if all exist
      const std::string s = (first ? "" : prefix) + byte_level().byte_to_char[b] + (last ? suffix : "");
      const size_t before = ids.size();
      bool all = true;
      for (unsigned char c : s) {
        const int32_t f = byte_fallback_ids[c];
        if (f < 0) {
          all = false;
          break;
        }
        ids.push_back(f);
      }
      if (all) continue;  // as HF: a pending unk stays pending across byte-fallback tokens
      ids.resize(before);
    }
    if (unk_id) {  // without an unk token HF drops the character
      if (pending_unk >= 0 && !fuse_unk) ids.push_back(pending_unk);
      pending_unk = *unk_id;
    }
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);
}

// HF's BPE::merge_word start for sentencepiece-style BPE (no ByteLevel pre-tokenizer): one symbol per
// character (with continuing_subword_prefix unless first, end_of_word_suffix when last); a character not
// in the vocabulary becomes its <0xNN> byte tokens (byte_fallback, when all exist), else unk (runs fused
// with fuse_unk), else nothing.
void BpeTokenizer::Impl::initial_symbols_chars(std::string_view word, std::vector<int32_t>& ids) const {
  int32_t pending_unk = -1;
  std::string key;
  uint32_t cp = 0;
  for (size_t i = 0; i < word.size();) {
    int n = utf8_step(word, i, &cp);  // word is valid UTF-8
    if (n < 0) n = -n;
    const bool first = i == 0, last = i + n == word.size();
    key.clear();
    if (!first) key += prefix;
    key.append(word.substr(i, n));
    if (last) key += suffix;
    i += n;
    const int32_t found = vocab.find(key);
    if (found >= 0) {
      if (pending_unk >= 0) ids.push_back(pending_unk), pending_unk = -1;
      ids.push_back(found);
      continue;
    }
    if (byte_fallback) {
      const size_t before = ids.size();
      bool all = true;
      for (unsigned char c : key) {
        const int32_t f = byte_fallback_ids[c];
        if (f < 0) {
          all = false;
          break;
        }
        ids.push_back(f);
      }
      if (all) continue;
      ids.resize(before);
    }
    if (unk_id) {
      if (pending_unk >= 0 && !fuse_unk) ids.push_back(pending_unk);
      pending_unk = *unk_id;
    }
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);
}

// HF's BPE::merge_word: initial symbols, then repeatedly apply the lowest-ranked merge, leftmost first,
// through a priority queue; stale queue entries are skipped.
void BpeTokenizer::Impl::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  if (byte_level_model) {
    initial_symbols_bytes(word, ids);
  } else {
    initial_symbols_chars(word, ids);
  }
  std::vector<Symbol> sym(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    sym[i] = {ids[i], static_cast<int32_t>(i) - 1, i + 1 < ids.size() ? static_cast<int32_t>(i + 1) : -1, true};
  }

  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto lookup = [&](int32_t a, int32_t b) { return merges.find(a, b); };
  for (size_t i = 0; i + 1 < sym.size(); ++i) {
    if (const Merge* m = lookup(sym[i].id, sym[i + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = sym[top.pos];
    if (!cur.alive || cur.next < 0) continue;
    const Symbol right = sym[cur.next];
    const Merge* m = lookup(cur.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale entry
    sym[cur.next].alive = false;
    cur.id = top.new_id;
    cur.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const Merge* p = lookup(sym[cur.prev].id, cur.id)) queue.push({p->rank, cur.prev, p->new_id});
    }
    if (cur.next >= 0) {
      if (const Merge* n = lookup(cur.id, sym[cur.next].id)) queue.push({n->rank, top.pos, n->new_id});
    }
  }
  for (const Symbol& s : sym) {
    if (s.alive) out.push_back(s.id);
  }
}

// BPE of one pre-token (raw bytes): the whole word when ignore_merges finds it in the vocabulary, else
// merges.
void BpeTokenizer::Impl::bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    const int32_t id = byte_level_model ? vocab.find(bytes_to_byte_level(word)) : vocab.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWord;
  std::string key;
  if (cacheable) {
    key.assign(word);
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(key);
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() < kMaxCacheEntries)
      cache.emplace(std::move(key), std::vector<int32_t>(out.begin() + start, out.end()));
  }
}

}  // namespace lens
