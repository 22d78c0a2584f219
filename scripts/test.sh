#!/usr/bin/env bash
# Runs loraflow's whole test suite: unit tests, the end-to-end pipeline and
# worker-crash tests on a real Temporal dev server, the cosign and helm
# interop checks. Installs its tools first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$(go env GOPATH)/bin:$PATH"
. scripts/blas-env.sh   # OpenBLAS (-tags openblas) where libopenblas is installed
go vet $GO_BLAS_TAGS ./...
CGO_ENABLED=0 go build ./...   # the pure-Go build must keep working
go test $GO_BLAS_TAGS -count=1 -timeout 30m ./...
if [ -n "$GO_BLAS_TAGS" ]; then
  # the engine on the pure-Go BLAS too (the fallback of cgo-less builds)
  CGO_ENABLED=0 go test -count=1 -timeout 10m ./lora/
  # and on OpenBLAS, which the run-time default (by CPU family) may not pick
  LORAFLOW_BLAS=openblas go test $GO_BLAS_TAGS -count=1 -timeout 10m ./lora/
fi
