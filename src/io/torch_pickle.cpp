// Reader for torch.save files holding a dict of tensors (see io/torch_pickle.h). The zip container
// is read with libtorch's PyTorchStreamReader; data.pkl is run on a small pickle machine that knows
// only what such files contain (dicts, tuples, lists, strings, numbers, storages and the few
// globals below). It exists because libtorch's own unpickler turns collections.OrderedDict, which
// every nn.Module.state_dict() is, into None.
#include "io/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <map>
#include <memory>

#include "lens/error.h"

namespace lens {

namespace {

struct PyVal;
using PyPtr = std::shared_ptr<PyVal>;

struct PyVal {
  enum Kind { kNone, kBool, kInt, kFloat, kStr, kTuple, kList, kDict, kGlobal, kTensor, kStorage } kind = kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;                              // str; global "module.name"
  std::vector<PyPtr> items;                   // tuple, list
  std::vector<std::pair<PyPtr, PyPtr>> dict;  // dict in insertion order
  at::Tensor t;                               // tensor; storage (1-D)
};

PyPtr make(PyVal::Kind k) {
  auto p = std::make_shared<PyVal>();
  p->kind = k;
  return p;
}

at::ScalarType storage_dtype(const std::string& name, const std::string& where) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},    {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) throw ModelError(where + ": unsupported storage type " + name);
  return it->second;
}

class Machine {
 public:
  Machine(const std::string& where, const std::vector<char>& code, caffe2::serialize::PyTorchStreamReader& zip)
      : where_(where), code_(code), zip_(zip) {}

  PyPtr run() {
    while (true) {
      const uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                                   // PROTO
        case 0x95: pos_ += 8; break;                              // FRAME (protocol 4)
        case '.': return pop();                                   // STOP
        case '(': marks_.push_back(stack_.size()); break;         // MARK
        case ')': stack_.push_back(make(PyVal::kTuple)); break;   // EMPTY_TUPLE
        case ']': stack_.push_back(make(PyVal::kList)); break;    // EMPTY_LIST
        case '}': stack_.push_back(make(PyVal::kDict)); break;    // EMPTY_DICT
        case 'N': stack_.push_back(make(PyVal::kNone)); break;    // NONE
        case 0x88: case 0x89: {                                   // NEWTRUE, NEWFALSE
          auto v = make(PyVal::kBool);
          v->i = op == 0x88;
          stack_.push_back(v);
          break;
        }
        case 'K': push_int(u8()); break;                          // BININT1
        case 'M': push_int(static_cast<int64_t>(u8()) | (static_cast<int64_t>(u8()) << 8)); break;  // BININT2
        case 'J': push_int(static_cast<int32_t>(le(4))); break;   // BININT
        case 0x8a: {                                              // LONG1
          const int n = u8();
          if (n > 8) fail("integer too large");
          uint64_t v = le(n);
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
          push_int(static_cast<int64_t>(v));
          break;
        }
        case 'G': {                                               // BINFLOAT (big-endian double)
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | u8();
          auto v = make(PyVal::kFloat);
          std::memcpy(&v->f, &bits, 8);
          stack_.push_back(v);
          break;
        }
        case 'X': push_str(le(4)); break;                         // BINUNICODE
        case 0x8c: push_str(u8()); break;                         // SHORT_BINUNICODE
        case 'c': {                                               // GLOBAL "module\nname\n"
          auto g = make(PyVal::kGlobal);
          const std::string module = line();  // two statements: operand order is unspecified
          g->s = module + "." + line();
          stack_.push_back(g);
          break;
        }
        case 0x93: {                                              // STACK_GLOBAL
          PyPtr name = pop(), module = pop();
          auto g = make(PyVal::kGlobal);
          g->s = module->s + "." + name->s;
          stack_.push_back(g);
          break;
        }
        case 'q': memo_[u8()] = top(); break;                     // BINPUT
        case 'r': memo_[le(4)] = top(); break;                    // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;            // MEMOIZE
        case 'h': stack_.push_back(get(u8())); break;             // BINGET
        case 'j': stack_.push_back(get(le(4))); break;            // LONG_BINGET
        case 't': {                                               // TUPLE
          auto v = make(PyVal::kTuple);
          v->items = pop_mark();
          stack_.push_back(v);
          break;
        }
        case 0x85: case 0x86: case 0x87: {                        // TUPLE1..3
          auto v = make(PyVal::kTuple);
          v->items.resize(op - 0x84);
          for (size_t k = v->items.size(); k-- > 0;) v->items[k] = pop();
          stack_.push_back(v);
          break;
        }
        case 'a': {                                               // APPEND
          PyPtr x = pop();
          list_top()->items.push_back(x);
          break;
        }
        case 'e': {                                               // APPENDS
          auto xs = pop_mark();
          PyPtr l = list_top();
          l->items.insert(l->items.end(), xs.begin(), xs.end());
          break;
        }
        case 's': {                                               // SETITEM
          PyPtr v = pop(), k = pop();
          dict_top()->dict.emplace_back(k, v);
          break;
        }
        case 'u': {                                               // SETITEMS
          auto xs = pop_mark();
          if (xs.size() % 2) fail("odd SETITEMS");
          PyPtr d = dict_top();
          for (size_t k = 0; k < xs.size(); k += 2) d->dict.emplace_back(xs[k], xs[k + 1]);
          break;
        }
        case 'b': pop(); break;  // BUILD: state of an OrderedDict (_metadata) or tensor; not needed
        case 'Q': {              // BINPERSID
          PyPtr pid = pop();
          stack_.push_back(storage(pid));
          break;
        }
        case 'R': {  // REDUCE
          PyPtr args = pop(), fn = pop();
          stack_.push_back(reduce(fn, args));
          break;
        }
        default:
          fail("unsupported pickle opcode 0x" + to_hex(op));
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw ModelError(where_ + ": cannot read torch.save data (" + what + " at byte " + std::to_string(pos_) + ")");
  }
  static std::string to_hex(uint8_t v) {
    const char* d = "0123456789abcdef";
    return std::string{d[v >> 4], d[v & 15]};
  }
  uint8_t u8() {
    if (pos_ >= code_.size()) fail("truncated");
    return static_cast<uint8_t>(code_[pos_++]);
  }
  uint64_t le(int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<uint64_t>(u8()) << (8 * k);
    return v;
  }
  std::string line() {
    std::string s;
    for (char c = static_cast<char>(u8()); c != '\n'; c = static_cast<char>(u8())) s += c;
    return s;
  }
  void push_int(int64_t v) {
    auto p = make(PyVal::kInt);
    p->i = v;
    stack_.push_back(p);
  }
  void push_str(uint64_t n) {
    if (n > code_.size() - pos_) fail("truncated string");
    auto p = make(PyVal::kStr);
    p->s.assign(code_.data() + pos_, n);
    pos_ += n;
    stack_.push_back(p);
  }
  PyPtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    PyPtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PyPtr top() {
    if (stack_.empty()) fail("empty stack");
    return stack_.back();
  }
  PyPtr get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("unknown memo " + std::to_string(k));
    return it->second;
  }
  std::vector<PyPtr> pop_mark() {
    if (marks_.empty()) fail("no MARK");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyPtr> xs(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return xs;
  }
  PyPtr list_top() {
    PyPtr l = top();
    if (l->kind != PyVal::kList) fail("APPEND to a non-list");
    return l;
  }
  PyPtr dict_top() {
    PyPtr d = top();
    if (d->kind != PyVal::kDict) fail("SETITEM on a non-dict");
    return d;
  }
  static std::vector<int64_t> ints(const PyPtr& tuple) {
    std::vector<int64_t> v;
    for (const auto& x : tuple->items) v.push_back(x->i);
    return v;
  }

  // ('storage', <storage type>, key, location, numel) -> 1-D tensor of the record data/<key>.
  PyPtr storage(const PyPtr& pid) {
    if (pid->kind != PyVal::kTuple || pid->items.size() < 5 || pid->items[0]->s != "storage") fail("unknown persistent id");
    const std::string key = pid->items[2]->s;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const at::ScalarType dt = storage_dtype(pid->items[1]->s, where_);
    const int64_t numel = pid->items[4]->i;
    const std::string record = "data/" + key;
    if (!zip_.hasRecord(record)) fail("missing record " + record);
    at::DataPtr data;
    size_t size = 0;
    std::tie(data, size) = zip_.getRecord(record);
    at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(dt));
    if (size != static_cast<size_t>(t.nbytes())) fail("record " + record + " has " + std::to_string(size) + " bytes, expected " + std::to_string(t.nbytes()));
    std::memcpy(t.data_ptr(), data.get(), size);
    auto v = make(PyVal::kStorage);
    v->t = t;
    storages_[key] = v;
    return v;
  }

  PyPtr reduce(const PyPtr& fn, const PyPtr& args) {
    if (fn->kind != PyVal::kGlobal || args->kind != PyVal::kTuple) fail("REDUCE of a non-callable");
    const auto& a = args->items;
    if (fn->s == "collections.OrderedDict") return make(PyVal::kDict);
    if (fn->s == "torch._utils._rebuild_tensor_v2" || fn->s == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != PyVal::kStorage) fail("bad _rebuild_tensor_v2 arguments");
      auto v = make(PyVal::kTensor);
      v->t = a[0]->t.as_strided(ints(a[2]), ints(a[3]), a[1]->i).clone();
      return v;
    }
    if (fn->s == "torch._utils._rebuild_parameter" || fn->s == "torch.jit._pickle.restore_type_tag") {
      if (a.empty()) fail("bad " + fn->s + " arguments");
      return a[0];
    }
    fail("unsupported object " + fn->s);
  }

  std::string where_;
  const std::vector<char>& code_;
  caffe2::serialize::PyTorchStreamReader& zip_;
  size_t pos_ = 0;
  std::vector<PyPtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PyPtr> memo_;
  std::map<std::string, PyPtr> storages_;
};

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> read_torch_tensor_dict(const std::filesystem::path& path) {
  const std::string where = path.string();
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path.string());
  } catch (const c10::Error& e) {
    throw ModelError(where + ": not a torch.save file (" + e.what_without_backtrace() + ")");
  }
  if (!zip->hasRecord("data.pkl")) throw ModelError(where + ": not a torch.save file (no data.pkl)");
  at::DataPtr data;
  size_t size = 0;
  std::tie(data, size) = zip->getRecord("data.pkl");
  const std::vector<char> code(static_cast<const char*>(data.get()), static_cast<const char*>(data.get()) + size);
  PyPtr root = Machine(where, code, *zip).run();
  if (root->kind != PyVal::kDict) throw ModelError(where + ": expected a dict of tensors");
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& kv : root->dict) {
    if (kv.first->kind != PyVal::kStr || kv.second->kind != PyVal::kTensor)
      throw ModelError(where + ": expected a dict of str -> tensor");
    out.emplace_back(kv.first->s, kv.second->t);
  }
  return out;
}

}  // namespace lens
