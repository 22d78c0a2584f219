package lora

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/cpu"
)

// EnvBLAS names the environment variable that forces the engine's BLAS
// backend at start-up: openblas, go or gonum (the binary must have it, or
// the program stops at start-up naming the variable); unset, empty or
// "auto": the backend that measured fastest on this CPU family
// (fastestBackends). scripts/blas-env.sh reads the same variable to decide
// whether to build with OpenBLAS at all.
const EnvBLAS = "LORAFLOW_BLAS"

// cpuFamily is what the default backend is chosen by: the vendor and
// family from /proc/cpuinfo and whether the CPU runs AVX-512F.
type cpuFamily struct {
	vendor string // vendor_id: "AuthenticAMD", "GenuineIntel"
	family int    // cpu family (decimal, as /proc/cpuinfo gives it); -1 unknown
	avx512 bool
}

// fastestBackends is the backend that won on each CPU family, measured
// with `loraflow bench --blas openblas` and `--blas go` in turn (llama30m,
// LoRA, the same minutes, 2 threads; OPENBLAS_CORETYPE=Haswell, so OpenBLAS
// runs its AVX2 kernels). Families not listed keep OpenBLAS where the
// binary has it: nobody has measured them.
//
//	CPU                                 llama30m tokens/s             winner
//	AMD EPYC, family 25 (Zen 3), AVX2   go 894–1159, openblas 702–859  go
//	                                    (2026-12-03, quiet machine)
//	AMD EPYC, family 25/26 with         not measured on AVX-512       go
//	AVX-512 (Zen 4, Zen 5)              hardware here: OpenBLAS stays
//	                                    on its Haswell (AVX2) kernels,
//	                                    the go backend runs the
//	                                    AVX-512 kernel (twice the FMAs
//	                                    a load, 2× the register peak)
//
// A pair measured on 2026-12-04 under a load average of 5–7 on the 2 cores
// (llama30m openblas 852, go 272 tokens/s; gpt2s 88 and 74) is not in the
// table: one pair at that load says more about the neighbours than about
// the backends. Re-measure on a quiet machine before changing a row.
var fastestBackends = []struct {
	vendor  string
	family  int
	avx512  bool
	backend string
}{
	{"AuthenticAMD", 25, false, "go"}, // Zen 3 / Zen 4 without AVX-512 reported
	{"AuthenticAMD", 25, true, "go"},  // Zen 4
	{"AuthenticAMD", 26, true, "go"},  // Zen 5
	{"AuthenticAMD", 26, false, "go"},
}

// defaultBackend returns the backend the engine starts on: EnvBLAS if set,
// else the table's winner for this CPU family where the binary has it,
// else the first of BLASBackends (OpenBLAS where built in).
func defaultBackend(available []string, env string, fam cpuFamily) (string, error) {
	switch env = strings.TrimSpace(env); env {
	case "", "auto":
	default:
		if !slices.Contains(available, env) {
			return "", fmt.Errorf("%s=%s: this binary's backends are %s", EnvBLAS, env, strings.Join(available, ", "))
		}
		return env, nil
	}
	for _, row := range fastestBackends {
		if row.vendor == fam.vendor && row.family == fam.family && row.avx512 == fam.avx512 && slices.Contains(available, row.backend) {
			return row.backend, nil
		}
	}
	return available[0], nil
}

// thisCPU reads the CPU's family (Linux /proc/cpuinfo; elsewhere unknown).
func thisCPU() cpuFamily {
	fam := cpuFamily{family: -1, avx512: cpu.X86.HasAVX512F}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return fam
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "vendor_id":
			fam.vendor = strings.TrimSpace(v)
		case "cpu family":
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				fam.family = n
			}
		case "processor":
			if fam.vendor != "" && fam.family >= 0 {
				return fam // the first processor's lines are enough
			}
		}
	}
	return fam
}

// useDefaultBackend switches to defaultBackend's choice; init calls it
// once every backend of the binary is registered.
func useDefaultBackend() {
	be, err := defaultBackend(BLASBackends(), os.Getenv(EnvBLAS), thisCPU())
	if err == nil {
		err = UseBLAS(be)
	}
	if err != nil {
		panic("lora: " + err.Error())
	}
}
