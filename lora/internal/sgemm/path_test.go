package sgemm

import (
	"slices"
	"strings"
	"testing"
)

// TestKernelSelection: the default is the fastest kernel the CPU runs
// (AVX-512 → AVX2 → gonum), gonum is always there, UseKernel switches and
// refuses unknown kernels and ones the CPU lacks, and LORAFLOW_SGEMM forces
// a kernel at start-up or stops it with the variable named.
func TestKernelSelection(t *testing.T) {
	defer func(saved kernelPath) { path = saved }(path)
	ks := Kernels()
	if ks[len(ks)-1] != KernelGonum {
		t.Fatalf("Kernels() = %v, want gonum last", ks)
	}
	if slices.Contains(ks, KernelAVX512) != hasAVX512 || slices.Contains(ks, KernelAVX2) != hasKernel {
		t.Fatalf("Kernels() = %v with AVX-512 %v, AVX2 %v", ks, hasAVX512, hasKernel)
	}
	t.Setenv(EnvKernel, "")
	if p := initialPath(); pathNames[p] != ks[0] {
		t.Fatalf("default kernel %q, want %q", pathNames[p], ks[0])
	}
	for _, k := range ks {
		t.Setenv(EnvKernel, k)
		if p := initialPath(); pathNames[p] != k {
			t.Fatalf("%s=%s: kernel %q", EnvKernel, k, pathNames[p])
		}
		if err := UseKernel(k); err != nil || Kernel() != k || Accelerated() != (k != KernelGonum) {
			t.Fatalf("UseKernel(%q): %v, Kernel() %q, Accelerated %v", k, err, Kernel(), Accelerated())
		}
	}
	for _, bad := range []string{"avx1024", KernelAVX512, KernelAVX2} {
		if slices.Contains(ks, bad) {
			continue
		}
		if err := UseKernel(bad); err == nil {
			t.Fatalf("UseKernel(%q) accepted", bad)
		}
		t.Setenv(EnvKernel, bad)
		func() {
			defer func() {
				r, _ := recover().(string)
				if !strings.Contains(r, EnvKernel+"="+bad) {
					t.Fatalf("%s=%s: panic %q, want one naming the variable", EnvKernel, bad, r)
				}
			}()
			initialPath()
		}()
	}
}
