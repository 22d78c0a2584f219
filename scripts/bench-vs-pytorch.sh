#!/usr/bin/env bash
# Side-by-side throughput of the Go engine and PyTorch on the reference
# workloads (docs/architecture.md, Performance reference), a developer script, not part of CI: it needs
# Debian's python3-torch (apt-get install python3-torch), which the product
# never uses. The two run in turn (engine, PyTorch, engine, PyTorch, ...), so
# that the ratio of each pair is taken at the same machine load; it prints
# every run's tokens/s and the median of the pairwise ratios.
#
# PyTorch runs with OMP_WAIT_POLICY=PASSIVE (its idle OpenMP threads sleep
# instead of spinning; with spinning threads it is many times slower on a
# shared 2-core machine, and the comparison would flatter the engine).
#
# usage: scripts/bench-vs-pytorch.sh [workload ...]   (default: llama30m gpt2s)
#   RUNS=5 STEPS=3 scripts/bench-vs-pytorch.sh llama30m
#   RUNS=2 STEPS=2 flock /tmp/heavy.lock scripts/bench-vs-pytorch.sh llama1b qwen0.5b
# Each engine figure is the default backend's (the table in
# lora/blas_default.go; LORAFLOW_BLAS=openblas or go forces one).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
steps=${STEPS:-3}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(llama30m gpt2s)
python=/usr/bin/python3
export OMP_WAIT_POLICY=PASSIVE
"$python" -c 'import torch' 2>/dev/null || { echo "bench-vs-pytorch: $python has no torch (apt-get install python3-torch)" >&2; exit 1; }
. scripts/blas-env.sh
bin=$(mktemp -d)/loraflow
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build $GO_BLAS_TAGS -o "$bin" ./cmd/loraflow
for w in "${workloads[@]}"; do
  engine=() torch=()
  for _ in $(seq "$runs"); do
    engine+=("$("$bin" bench --workload "$w" --steps "$steps" --json | "$python" -c 'import json,sys; r=json.load(sys.stdin)["rows"][0]; print(r["TokensPerSec"], r["BLAS"] + "/" + r["Kernel"])')")
    torch+=("$("$python" scripts/bench-pytorch.py "$w" "$steps" "$(nproc)" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_sec"])')")
  done
  "$python" - "$w" "$LORAFLOW_BLAS_BACKEND" "${engine[*]}" "${torch[*]}" <<'PY'
import statistics, sys
w, backend = sys.argv[1], sys.argv[2]
e = [float(x) for x in sys.argv[3].split()[0::2]]
backend = backend + ", " + " ".join(sorted(set(sys.argv[3].split()[1::2])))
t = [float(x) for x in sys.argv[4].split()]
r = [a / b for a, b in zip(e, t)]
print(f"{w}: loraflow ({backend}) tokens/s {[round(x) for x in e]} median {statistics.median(e):.0f}; "
      f"PyTorch {[round(x) for x in t]} median {statistics.median(t):.0f}; "
      f"loraflow/PyTorch per pair {[round(x, 2) for x in r]} median {statistics.median(r):.2f}x")
PY
done
