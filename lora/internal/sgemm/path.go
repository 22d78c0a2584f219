package sgemm

import (
	"fmt"
	"os"
	"strings"
)

// Kernel names, as Kernels, Kernel and UseKernel spell them and as the
// LORAFLOW_SGEMM environment variable takes them.
const (
	KernelAVX512 = "avx512" // kernel12x32: AVX-512F, 12×32 tiles (edges on kernel6x16)
	KernelAVX2   = "avx2"   // kernel6x16: AVX2 and FMA, 6×16 tiles
	KernelGonum  = "gonum"  // gonum's pure-Go Sgemm
)

// EnvKernel names the environment variable that forces a kernel at start-up
// (one of the Kernel names; the CPU must run it, or the program panics at
// start-up naming the variable). Unset or empty: the fastest the CPU runs.
const EnvKernel = "LORAFLOW_SGEMM"

// kernelPath is the code path Sgemm takes.
type kernelPath int

const (
	pathGonum kernelPath = iota
	pathAVX2
	pathAVX512
)

var pathNames = [...]string{pathGonum: KernelGonum, pathAVX2: KernelAVX2, pathAVX512: KernelAVX512}

// availablePaths lists the paths this CPU runs, fastest first: AVX-512 →
// AVX2 → gonum.
func availablePaths() []kernelPath {
	var ps []kernelPath
	if hasAVX512 {
		ps = append(ps, pathAVX512)
	}
	if hasKernel {
		ps = append(ps, pathAVX2)
	}
	return append(ps, pathGonum)
}

// path is the path Sgemm takes: the fastest available, unless EnvKernel
// says otherwise. Set before use (UseKernel), not while products run.
var path = initialPath()

func initialPath() kernelPath {
	name := strings.TrimSpace(os.Getenv(EnvKernel))
	if name == "" {
		return availablePaths()[0]
	}
	p, err := lookupPath(name)
	if err != nil {
		panic(fmt.Sprintf("%s=%s: %v", EnvKernel, name, err))
	}
	return p
}

func lookupPath(name string) (kernelPath, error) {
	for _, p := range availablePaths() {
		if pathNames[p] == name {
			return p, nil
		}
	}
	for _, n := range pathNames {
		if n == name {
			return 0, fmt.Errorf("sgemm: kernel %q: this CPU (or OS) does not run it; available: %s",
				name, strings.Join(Kernels(), ", "))
		}
	}
	return 0, fmt.Errorf("sgemm: unknown kernel %q (want %s, %s or %s)", name, KernelAVX512, KernelAVX2, KernelGonum)
}

// Kernels lists the kernels this CPU runs, fastest first (the default
// first, unless EnvKernel forced another).
func Kernels() []string {
	var names []string
	for _, p := range availablePaths() {
		names = append(names, pathNames[p])
	}
	return names
}

// Kernel returns the name of the kernel Sgemm uses.
func Kernel() string { return pathNames[path] }

// UseKernel switches Sgemm to the named kernel (see Kernels). It is meant
// for benchmarks and tests that compare them; call it before use, not
// while products run.
func UseKernel(name string) error {
	p, err := lookupPath(name)
	if err != nil {
		return err
	}
	path = p
	return nil
}

// Accelerated reports whether Sgemm uses one of the assembly kernels
// (amd64 with AVX2 and FMA, or AVX-512F); otherwise Sgemm is gonum's.
func Accelerated() bool { return path != pathGonum }
