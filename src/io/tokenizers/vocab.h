// The two big tables of a BPE model, built for fast loading: token strings in an open-addressing index whose
// slots hold short pieces inline (no allocation per token, one cache line per lookup), and merges keyed by a
// 64-bit (left id, right id) pair. Loading Gemma 3's 262k tokens and 515k merges into
// std::unordered_map<std::string, ...> took seconds, nearly all of it cache misses; the loader also
// prefetches slots a few entries ahead (hash(), prefetch()), which halves what is left.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lens::tok {

/// piece -> id for a vocabulary.
class Vocab {
 public:
  /// Room for `n_pieces` pieces (a hint; more may be added).
  void reserve(size_t n_pieces);
  /// Sets the id of `piece`; a repeated piece takes the last id, as a JSON object read into a map does.
  void set(std::string_view piece, int32_t id) { set_hashed(hash(piece), piece, id); }
  void set_hashed(uint32_t h, std::string_view piece, int32_t id);
  /// The id of `piece`, or -1 when it is not in the vocabulary.
  int32_t find(std::string_view piece) const { return find_hashed(hash(piece), piece, {}); }
  /// The id of the concatenation a + b (no string built), or -1; `h` is hash(a, b).
  int32_t find_hashed(uint32_t h, std::string_view a, std::string_view b) const;
  size_t size() const { return size_; }
  /// Calls f(piece, id) for every piece (in no particular order).
  template <typename F>
  void for_each(F f) const {
    for (const Slot& s : slots_) {
      if (s.id >= 0) f(piece_of(s), s.id);
    }
  }

  /// The hash lookups use: of `a`, or of the concatenation a + b.
  static uint32_t hash(std::string_view a, std::string_view b = {});
  /// Starts loading the slot where a lookup of hash `h` begins (a hint to the CPU; no effect on results).
  void prefetch(uint32_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[h & (slots_.size() - 1)]);
  }

 private:
  static constexpr size_t kInline = 20;  // pieces up to this many bytes live in the slot itself
  struct alignas(32) Slot {
    uint32_t hash;
    int32_t id;  // -1: empty
    uint32_t length;
    union {
      uint32_t offset;  // into text_, when length > kInline
      char bytes[kInline];
    };
  };
  std::string_view piece_of(const Slot& s) const {
    return s.length <= kInline ? std::string_view(s.bytes, s.length) : std::string_view(text_).substr(s.offset, s.length);
  }
  void rehash(size_t n_slots);
  std::string text_;         // pieces longer than kInline
  std::vector<Slot> slots_;  // open addressing, linear probing; a power of two, at most half full
  size_t size_ = 0;
};

/// A BPE merge: its priority (lower merges first) and the id of the merged token.
struct Merge {
  int32_t rank;
  int32_t new_id;
};

/// (left id, right id) -> Merge, open addressing on the packed pair.
class MergeMap {
 public:
  void reserve(size_t n);
  /// Sets the merge of (left, right); a repeated pair takes the last value, as HF's merge map does.
  void set(int32_t left, int32_t right, Merge merge);
  /// The merge of (left, right), or nullptr.
  const Merge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }
  void prefetch(int32_t left, int32_t right) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[slot_of(pack(left, right))]);
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are non-negative int32: never a real pair
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t slot_of(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  void rehash(size_t n_slots);
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
  int shift_ = 64;
};

}  // namespace lens::tok
