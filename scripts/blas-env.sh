# Sourced by scripts/test.sh, quickstart.sh and bench-vs-pytorch.sh: picks
# the BLAS backends the engine is built with. Where cgo, a C compiler and
# libopenblas (Debian libopenblas-dev, installed by scripts/setup.sh) are
# present, builds add OpenBLAS (-tags openblas, CGO_LDFLAGS=-lopenblas) beside
# the pure-Go backends ("go": gonum with the engine's AVX-512 or AVX2 sgemm
# kernel; "gonum": gonum alone). Which one a run starts on is chosen at run
# time by CPU family, the one that measured fastest (lora/blas_default.go:
# "go" on AMD EPYC, where it beats OpenBLAS's Haswell kernels), not OpenBLAS
# because it is built in.
#
# LORAFLOW_BLAS=go (or gonum) builds without OpenBLAS; LORAFLOW_BLAS=openblas
# (or go, gonum) also forces that backend at run time, where the engine
# reads the same variable. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are left
# as the environment has them.
# Sets GO_BLAS_TAGS (empty or "-tags=openblas") and LORAFLOW_BLAS_BACKEND
# (what the build has, for messages).
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
  LORAFLOW_BLAS_BACKEND="openblas and pure Go (default by CPU family${LORAFLOW_BLAS:+, LORAFLOW_BLAS=$LORAFLOW_BLAS})"
fi
echo "loraflow: BLAS backends: $LORAFLOW_BLAS_BACKEND" >&2
