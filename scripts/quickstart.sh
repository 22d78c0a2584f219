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
# Attestations name the worker binary's source revision (GOFLAGS here may
# turn Go's own VCS stamping off).
stamp="-X github.com/loraflow/loraflow/provenance.Revision=$(git rev-parse HEAD 2>/dev/null || true)"
go build $GO_BLAS_TAGS -ldflags "$stamp" -o bin/loraflow ./cmd/loraflow
go build $GO_BLAS_TAGS -ldflags "$stamp" -o bin/worker ./cmd/worker
exec bin/loraflow run examples/quickstart/spec.yaml "$@"
