#!/usr/bin/env bash
# Sets up loraflow and runs the quickstart pipeline on the embedded default:
# a local Temporal dev server, an in-process worker, the local registry, the
# bundled example model and data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$(go env GOPATH)/bin:$PATH"
. scripts/blas-env.sh   # OpenBLAS (-tags openblas) where libopenblas is installed
mkdir -p bin
go build $GO_BLAS_TAGS -o bin/loraflow ./cmd/loraflow
go build $GO_BLAS_TAGS -o bin/worker ./cmd/worker
exec bin/loraflow run examples/quickstart/spec.yaml "$@"
