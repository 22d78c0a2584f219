#!/usr/bin/env bash
# Rebuilds lora/tokenizer/testdata/llamacpp from llama.cpp's vocab-only GGUF
# files and their .inp/.out tokenizer test vectors, as bundled in the npm
# package node-llama-cpp (llama/gitRelease.bundle, a git bundle of llama.cpp).
# Needs npm and git; the download (about 35 MB) is cached in
# ~/.cache/loraflow/npm. Tests never run this: they read the committed files.
set -euo pipefail
pkg=node-llama-cpp@3.21.1
cache=${XDG_CACHE_HOME:-$HOME/.cache}/loraflow/npm
mkdir -p "$cache"
cd "$cache"
tgz=node-llama-cpp-3.21.1.tgz
[ -f "$tgz" ] || npm pack "$pkg" --pack-destination "$cache" >/dev/null
if [ ! -d llamacpp/models ]; then
	tar xzf "$tgz" package/llama/gitRelease.bundle
	rm -rf llamacpp
	git clone -q package/llama/gitRelease.bundle llamacpp
fi
models=$cache/llamacpp/models
cd "$(dirname "$0")/.."
go test ./lora/tokenizer -run 'TestLlamaCppVectors$' -count=1 -v -update-llamacpp "$models" | grep -E 'vectors|bytes from|^(ok|FAIL)'
