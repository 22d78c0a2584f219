# Sourced by scripts/test.sh and scripts/quickstart.sh: picks the engine's
# BLAS backend. Where cgo, a C compiler and libopenblas (Debian
# libopenblas-dev, installed by scripts/setup.sh) are present, builds use
# OpenBLAS (-tags openblas, CGO_LDFLAGS=-lopenblas); otherwise the pure-Go
# backend ("go": gonum with the engine's AVX2 sgemm kernel, or gonum alone on
# CPUs without AVX2). LORAFLOW_BLAS=go (or gonum) forces the pure-Go build.
# Sets GO_BLAS_TAGS (empty or "-tags=openblas") and LORAFLOW_BLAS_BACKEND.
GO_BLAS_TAGS=""
LORAFLOW_BLAS_BACKEND="pure Go"
if [ "${LORAFLOW_BLAS:-auto}" != gonum ] && [ "${LORAFLOW_BLAS:-auto}" != go ] &&
  [ "$(go env CGO_ENABLED)" = 1 ] &&
  command -v "$(go env CC)" >/dev/null 2>&1 &&
  # grep reads all of ldconfig's output (no -q): under `set -o pipefail` an
  # early exit would SIGPIPE ldconfig and fail the test at random.
  { ldconfig -p 2>/dev/null | grep 'libopenblas\.so ' >/dev/null ||
    ls /usr/lib/*/libopenblas.so >/dev/null 2>&1 || [ -e /usr/lib/libopenblas.so ]; }; then
  case " ${CGO_LDFLAGS:-} " in
  *" -lopenblas "*) ;;
  *) export CGO_LDFLAGS="${CGO_LDFLAGS:+$CGO_LDFLAGS }-lopenblas" ;;
  esac
  GO_BLAS_TAGS="-tags=openblas"
  LORAFLOW_BLAS_BACKEND=openblas
fi
echo "loraflow: BLAS backend $LORAFLOW_BLAS_BACKEND" >&2
