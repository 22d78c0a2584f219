#!/usr/bin/env bash
# Installs what loraflow needs beside Go on a Debian machine, idempotently:
# the Temporal CLI (its dev server is the embedded default) and, where apt
# is usable, OpenBLAS for the cgo BLAS backend.
set -euo pipefail
TEMPORAL_CLI_VERSION=v1.5.1
gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

if ! command -v temporal >/dev/null 2>&1; then
  echo "setup: installing the Temporal CLI $TEMPORAL_CLI_VERSION (go install; a few minutes the first time)..."
  go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION"
fi

if ! [ -e /usr/include/x86_64-linux-gnu/cblas.h ] && ! [ -e /usr/include/cblas.h ] && ! ls /usr/include/*/cblas*.h >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing libopenblas-dev (apt)..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev >/dev/null) ||
      echo "setup: libopenblas-dev not installed; the pure-Go BLAS is used"
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev >/dev/null) ||
      echo "setup: libopenblas-dev not installed; the pure-Go BLAS is used"
  fi
fi

# A headless Chromium, for the test that renders the HTML run report
# (report.TestReportRendersInChromium); without it that test is skipped.
if ! command -v chromium-headless-shell >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing chromium-headless-shell (apt)..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium-headless-shell >/dev/null) ||
      echo "setup: chromium-headless-shell not installed; the HTML report's browser test is skipped"
  fi
fi
