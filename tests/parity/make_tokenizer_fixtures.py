#!/usr/bin/env python3
"""Parity fixtures for the byte-level BPE tokenizer (src/io/bpe_tokenizer.cpp), made with HF `tokenizers`.

Reads tests/fixtures/tokenizer/corpus.jsonl (one object per line: "name" plus "text", or "b64" for raw bytes that
may be invalid UTF-8; those are decoded with errors="replace", as the C++ side does) and writes
tests/fixtures/tokenizer/expected_ids.json with, for each tokenizer variant and corpus line, the ids with and without
special tokens and `decode(ids)` (tokenizers' default, skip_special_tokens=True).

With --retrain it first rebuilds tests/fixtures/tokenizer/llama3-style/ and qwen2-style/ (small BPEs trained here,
shaped like Llama 3's and Qwen2's tokenizer.json; Qwen2's has an NFC normalizer). Training is not guaranteed to be
bit-for-bit reproducible across `tokenizers` versions, so the committed tokenizer.json files are the reference and
are only rebuilt on request (a missing one is built).

Normalizer variants of qwen2-style (NORMALIZER_VARIANTS: another normalizer and extra added tokens) are written into
expected_ids.json as "variants", so that the C++ test builds exactly the same tokenizer.json.

Usage (from the repo root):
  python3 -m venv .venv-tok && .venv-tok/bin/pip install tokenizers
  .venv-tok/bin/python tests/parity/make_tokenizer_fixtures.py [--retrain] [--shared ../shared]
      [--check-transformers]   (needs `pip install transformers`; checked with 5.24: all lines agree)
Does not need the C++ build; the GPT-2 vocab.json/merges.txt are read from <shared>/models/gpt2-tokenizer.
"""
import argparse
import base64
import json
import os
import sys

import tokenizers
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
LLAMA3_DIR = os.path.join(FIX, "llama3-style")
QWEN2_DIR = os.path.join(FIX, "qwen2-style")

# Llama 3's pre-tokenizer split pattern, verbatim from its tokenizer.json.
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|eot_id|>"]
# Qwen2's split pattern, verbatim from Qwen/Qwen2-0.5B's tokenizer.json (Llama 3's, but single digits).
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def read_corpus():
    lines = []
    with open(os.path.join(FIX, "corpus.jsonl"), encoding="utf-8") as f:
        for row in f:
            if not row.strip():
                continue
            obj = json.loads(row)
            if "b64" in obj:
                text = base64.b64decode(obj["b64"]).decode("utf-8", errors="replace")
            else:
                text = obj["text"]
            lines.append((obj["name"], text))
    return lines


def train_llama3_style(shared):
    """A ~1000-token byte-level BPE with Llama 3's pre-tokenizer, template (BOS) and ignore_merges=True."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=LLAMA3_SPECIALS)
    texts = []
    for rel, n in (("corpus/tinyshakespeare/input.txt", 300_000),
                   ("corpus/tinystories/tinystories_train_first2MiB.complete.txt", 300_000)):
        with open(os.path.join(shared, rel), encoding="utf-8") as f:
            texts.append(f.read(n))
    tok.train_from_iterator(texts, trainer=trainer)  # not training_texts(): keeps the committed fixture
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    # Like Llama 3 (converted from tiktoken), leave some vocabulary words unreachable through merges, so that
    # ignore_merges=True (whole pre-token found in the vocabulary wins) changes results: drop every 5th merge
    # whose result is 4+ characters long. The dropped merges' tokens stay in the vocabulary.
    obj = json.loads(tok.to_str())
    merges = obj["model"]["merges"]
    obj["model"]["merges"] = [m for i, m in enumerate(merges) if not (i % 5 == 0 and len(m[0] + m[1]) >= 4)]
    os.makedirs(LLAMA3_DIR, exist_ok=True)
    with open(os.path.join(LLAMA3_DIR, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
              "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 2048}
    with open(os.path.join(LLAMA3_DIR, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def training_texts(shared):
    texts = []
    for rel, n in (("corpus/tinyshakespeare/input.txt", 300_000),
                   ("corpus/tinystories/tinystories_train_first2MiB.complete.txt", 300_000)):
        with open(os.path.join(shared, rel), encoding="utf-8") as f:
            texts.append(f.read(n))
    # A little precomposed non-ASCII text, so that some accented letters and Hangul syllables get merges.
    texts.append("caf\u00e9 r\u00e9sum\u00e9 na\u00efve \u00c5ngstr\u00f6m \ud55c\uae00 \uac00\ub098\ub2e4 " * 50)
    return texts


def train_qwen2_style(shared):
    """A ~1000-token byte-level BPE shaped like Qwen2's tokenizer.json: NFC normalizer, Qwen2's Split regex then
    ByteLevel(use_regex=False), ByteLevel post-processor (no BOS), <|endoftext|> / <|im_start|> / <|im_end|>."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[AddedToken(t, special=True, normalized=False)
                                                  for t in QWEN2_SPECIALS])
    tok.train_from_iterator(training_texts(shared), trainer=trainer)
    os.makedirs(QWEN2_DIR, exist_ok=True)
    obj = json.loads(tok.to_str())
    with open(os.path.join(QWEN2_DIR, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    config = {"bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
              "tokenizer_class": "Qwen2Tokenizer", "add_prefix_space": False, "errors": "replace",
              "model_max_length": 32768}
    with open(os.path.join(QWEN2_DIR, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def added(content, special, normalized):
    return {"content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": normalized, "special": special}


# qwen2-style with another normalizer (and extra added tokens, given ids after the vocabulary in order).
# "normalized": true tokens are matched by their normalized content on normalized text, special ones included.
NORMALIZER_VARIANTS = {
    "qwen2-style-nfkc-mix": {
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKD"}, {"type": "NFC"},  # = NFKC
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
            {"type": "Replace", "pattern": {"String": "``"}, "content": "\""},
            {"type": "Lowercase"},
            {"type": "Strip", "strip_left": True, "strip_right": False},
        ]},
        "added_tokens": [added("\uff37\uff2f\uff32\uff2c\uff24", False, True),  # fullwidth WORLD -> "world"
                         added("<|SP|>", True, True),                             # special, matched as "<|sp|>"
                         added("cafe\u0301", False, True),                         # decomposed, matched as "caf\u00e9"
                         added("WORLD", False, False)],                           # raw, before normalization
    },
    "qwen2-style-nfd-prepend": {
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Prepend", "prepend": "_"}]},
        "added_tokens": [],
    },
    "qwen2-style-nfkd": {"normalizer": {"type": "NFKD"}, "added_tokens": []},
}


def with_normalizer(path, variant):
    """The tokenizer at `path` with variant["normalizer"] and variant["added_tokens"] appended (ids assigned after
    the largest one, in order); returns it and the added tokens with their ids."""
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    obj["normalizer"] = variant["normalizer"]
    next_id = 1 + max(max(obj["model"]["vocab"].values()), max(t["id"] for t in obj["added_tokens"]))
    extra = []
    for t in variant["added_tokens"]:
        extra.append(dict(t, id=next_id))
        next_id += 1
    obj["added_tokens"] += extra
    tok = Tokenizer.from_str(json.dumps(obj))
    for t in obj["added_tokens"]:
        assert tok.token_to_id(t["content"]) == t["id"], t
    return tok, extra


def gpt2_reference(shared, add_prefix_space):
    """What transformers' GPT2Converter builds from vocab.json + merges.txt (GPT2TokenizerFast)."""
    d = os.path.join(shared, "models", "gpt2-tokenizer")
    bpe = models.BPE.from_file(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"),
                               continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return tok


def with_ignore_merges(path, value):
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    obj["model"]["ignore_merges"] = value
    return Tokenizer.from_str(json.dumps(obj))


GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def split(pattern, behavior="Isolated", invert=False, literal=False):
    return {"type": "Split", "pattern": {"String" if literal else "Regex": pattern}, "behavior": behavior,
            "invert": invert}


# Pre-tokenizers whose splits are compared piece by piece (regex translation Oniguruma -> PCRE2, behaviours).
PRE_TOKENIZERS = [
    split(LLAMA3_PATTERN),
    split(GPT2_PATTERN),
    split(r"\s+", "Removed"),
    split(r"\s+", "MergedWithPrevious"),
    split(r"\s+", "MergedWithNext"),
    split(r"\s+", "Contiguous"),
    split(r"\s+", "Isolated", invert=True),
    split(r"\w+"),
    split(r"\h+"),
    split(r"[\S]+"),
    split(" ", "MergedWithNext", literal=True),
    {"type": "Digits", "individual_digits": True},
    {"type": "Digits", "individual_digits": False},
]


def pre_tokenize_all(spec, corpus):
    tok = Tokenizer.from_str(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []},
                                         "pre_tokenizer": spec}))
    return {"spec": spec, "pieces": [[p for p, _ in tok.pre_tokenizer.pre_tokenize_str(text)] for _, text in corpus]}


def run(tok, corpus):
    out = []
    for name, text in corpus:
        ids = tok.encode(text).ids
        plain = tok.encode(text, add_special_tokens=False).ids
        out.append({"name": name, "ids": ids, "ids_no_special": plain, "decoded": tok.decode(ids)})
    return out


def check_transformers(shared, corpus, result):
    """The fixtures reproduce what transformers loads: GPT2Tokenizer(Fast) from vocab.json + merges.txt, and
    PreTrainedTokenizerFast from the llama3-style directory (ids and decode with skip_special_tokens=True)."""
    from transformers import AutoTokenizer, GPT2TokenizerFast
    for variant, cls, path in (("gpt2", GPT2TokenizerFast, os.path.join(shared, "models", "gpt2-tokenizer")),
                               ("llama3-style", AutoTokenizer, LLAMA3_DIR),
                               ("qwen2-style", AutoTokenizer, QWEN2_DIR)):
        tk = cls.from_pretrained(path)
        rows = result["tokenizers"][variant]
        same = sum(tk(text)["input_ids"] == row["ids"] and
                   tk.decode(row["ids"], skip_special_tokens=True) == row["decoded"]
                   for (_, text), row in zip(corpus, rows))
        print(f"transformers {type(tk).__name__} on {variant}: {same}/{len(rows)} lines agree", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retrain", action="store_true", help="rebuild tests/fixtures/tokenizer/llama3-style first")
    ap.add_argument("--shared", default=os.environ.get("LENS_SHARED_DIR", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--check-transformers", action="store_true",
                    help="also check that transformers' AutoTokenizer (if installed) gives the same ids")
    args = ap.parse_args()

    llama3_json = os.path.join(LLAMA3_DIR, "tokenizer.json")
    if args.retrain or not os.path.exists(llama3_json):
        train_llama3_style(args.shared)
    qwen2_json = os.path.join(QWEN2_DIR, "tokenizer.json")
    if args.retrain or not os.path.exists(qwen2_json):
        train_qwen2_style(args.shared)
    corpus = read_corpus()
    variants = {
        "gpt2": gpt2_reference(args.shared, add_prefix_space=False),
        "gpt2-add-prefix-space": gpt2_reference(args.shared, add_prefix_space=True),
        "llama3-style": Tokenizer.from_file(llama3_json),
        "llama3-style-no-ignore-merges": with_ignore_merges(llama3_json, False),
        "qwen2-style": Tokenizer.from_file(qwen2_json),
        "qwen2-style-no-normalizer": with_normalizer(qwen2_json, {"normalizer": None, "added_tokens": []})[0],
    }
    specs = {}  # what the C++ test applies to qwen2-style/tokenizer.json for each variant
    for name, spec in NORMALIZER_VARIANTS.items():
        variants[name], extra = with_normalizer(qwen2_json, spec)
        specs[name] = {"normalizer": spec["normalizer"], "added_tokens": extra}
    result = {"generator": "tests/parity/make_tokenizer_fixtures.py",
              "tokenizers_version": tokenizers.__version__,
              "variants": specs,
              "tokenizers": {k: run(v, corpus) for k, v in variants.items()},
              "pre_tokenizers": [pre_tokenize_all(spec, corpus) for spec in PRE_TOKENIZERS]}
    path = os.path.join(FIX, "expected_ids.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    if args.check_transformers:
        check_transformers(args.shared, corpus, result)
    a = result["tokenizers"]["llama3-style"]
    b = result["tokenizers"]["llama3-style-no-ignore-merges"]
    n_diff = sum(x["ids"] != y["ids"] for x, y in zip(a, b))
    q = result["tokenizers"]["qwen2-style"]
    r = result["tokenizers"]["qwen2-style-no-normalizer"]
    n_nfc = sum(x["ids"] != y["ids"] for x, y in zip(q, r))
    print(f"wrote {path}: {len(corpus)} lines x {len(variants)} tokenizers; "
          f"ignore_merges changes {n_diff} llama3-style lines, NFC changes {n_nfc} qwen2-style lines",
          file=sys.stderr)


if __name__ == "__main__":
    main()
