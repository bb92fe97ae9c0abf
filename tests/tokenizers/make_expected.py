#!/usr/bin/env python3
"""Expected ids for tests/unit/test_tokenizer_parity.cpp: transformers' AutoTokenizer on real tokenizer files.

For each tokenizer directory under FILES (made by fetch.sh) and each line of corpus.jsonl, records
tokenizer(text)["input_ids"] (special tokens as transformers adds them), the ids with add_special_tokens=False,
and decode(ids without specials, skip_special_tokens=True). Writes expected_ids.json next to this script: our
own output of the reference, so it is committed; the tokenizer files are not.

Usage: /work/venv5/bin/python tests/tokenizers/make_expected.py [FILES]   (checked with transformers 5.23.0,
tokenizers 0.23.3; FILES defaults to tests/tokenizers/files)
"""
import base64
import json
import os
import sys

import tokenizers
import transformers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


def corpus():
    out = []
    with open(os.path.join(HERE, "corpus.jsonl"), encoding="utf-8") as f:
        for row in f:
            obj = json.loads(row)
            text = base64.b64decode(obj["b64"]).decode("utf-8", errors="replace") if "b64" in obj else obj["text"]
            out.append((obj["name"], text))
    return out


def main():
    files = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "files")
    lines = corpus()
    result = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "tokenizers_": {}}
    for name in sorted(os.listdir(files)):
        tok = AutoTokenizer.from_pretrained(os.path.join(files, name))
        rows = []
        for line_name, text in lines:
            ids = tok(text)["input_ids"]
            plain = tok(text, add_special_tokens=False)["input_ids"]
            rows.append({"name": line_name, "ids": ids, "ids_nospecial": plain,
                         "decoded": tok.decode(plain, skip_special_tokens=True)})
        result["tokenizers_"][name] = {"class": type(tok).__name__, "lines": rows}
        print(f"{name}: {type(tok).__name__}, {len(rows)} lines", file=sys.stderr)
    result["tokenizers"] = result.pop("tokenizers_")
    with open(os.path.join(HERE, "expected_ids.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
