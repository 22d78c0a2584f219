#!/usr/bin/env bash
# Runs loraflow's whole test suite: unit tests, the end-to-end pipeline and
# worker-crash tests on a real Temporal dev server, the cosign and helm
# interop checks. Installs its tools first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$(go env GOPATH)/bin:$PATH"
go vet ./...
CGO_ENABLED=0 go build ./...   # the pure-Go build must keep working
go test -count=1 -timeout 30m ./...
