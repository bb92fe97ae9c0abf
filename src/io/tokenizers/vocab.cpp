// Vocabulary index and pair-keyed merge table (see vocab.h).
#include "io/tokenizers/vocab.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace lens::tok {

namespace {

size_t slots_for(size_t n) {
  size_t s = 16;
  while (s < 2 * n) s *= 2;
  return s;
}

}  // namespace

// FNV-1a over a then b (tokens are a few bytes: as fast as anything fancier), folded to 32 bits.
uint32_t Vocab::hash(std::string_view a, std::string_view b) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : a) h = (h ^ c) * 1099511628211ull;
  for (unsigned char c : b) h = (h ^ c) * 1099511628211ull;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

void Vocab::reserve(size_t n_pieces) {
  if (slots_for(n_pieces) > slots_.size()) rehash(slots_for(n_pieces));
}

void Vocab::rehash(size_t n_slots) {
  Slot empty{};
  empty.id = -1;
  std::vector<Slot> old(n_slots, empty);
  old.swap(slots_);
  const size_t mask = n_slots - 1;
  for (const Slot& s : old) {
    if (s.id < 0) continue;
    size_t i = s.hash & mask;
    while (slots_[i].id >= 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void Vocab::set_hashed(uint32_t h, std::string_view piece, int32_t id) {
  if (id < 0) throw std::invalid_argument("negative token id");
  if (piece.size() > UINT32_MAX || text_.size() + piece.size() > UINT32_MAX)
    throw std::length_error("vocabulary text over 4 GiB");
  if (2 * (size_ + 1) > slots_.size()) rehash(slots_for(size_ + 1));
  const size_t mask = slots_.size() - 1;
  size_t i = h & mask;
  for (; slots_[i].id >= 0; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.hash == h && piece_of(s) == piece) {
      s.id = id;
      return;
    }
  }
  Slot& s = slots_[i];
  s.hash = h;
  s.id = id;
  s.length = static_cast<uint32_t>(piece.size());
  if (piece.size() <= kInline) {
    std::memcpy(s.bytes, piece.data(), piece.size());
  } else {
    s.offset = static_cast<uint32_t>(text_.size());
    text_.append(piece);
  }
  ++size_;
}

int32_t Vocab::find_hashed(uint32_t h, std::string_view a, std::string_view b) const {
  if (slots_.empty()) return -1;
  const size_t mask = slots_.size() - 1, n = a.size() + b.size();
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.hash != h || s.length != n) continue;
    const char* p = s.length <= kInline ? s.bytes : text_.data() + s.offset;
    if ((a.empty() || std::memcmp(p, a.data(), a.size()) == 0) &&
        (b.empty() || std::memcmp(p + a.size(), b.data(), b.size()) == 0))
      return s.id;
  }
}

void MergeMap::reserve(size_t n) {
  if (slots_for(n) > slots_.size()) rehash(slots_for(n));
}

void MergeMap::rehash(size_t n_slots) {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(n_slots, Slot{kEmpty, {0, 0}});
  mask_ = n_slots - 1;
  shift_ = 64;
  for (size_t s = n_slots; s > 1; s >>= 1) --shift_;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t i = slot_of(s.key);
    while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

void MergeMap::set(int32_t left, int32_t right, Merge merge) {
  if (2 * (size_ + 1) > slots_.size()) rehash(slots_for(size_ + 1));
  const uint64_t key = pack(left, right);
  size_t i = slot_of(key);
  for (; slots_[i].key != kEmpty; i = (i + 1) & mask_) {
    if (slots_[i].key == key) {
      slots_[i].merge = merge;
      return;
    }
  }
  slots_[i] = Slot{key, merge};
  ++size_;
}

}  // namespace lens::tok
