package lora

import (
	"slices"
	"testing"
)

// TestUseBLAS: the default backend is the first of BLASBackends, gonum is
// always there, and an unknown or absent backend is refused.
func TestUseBLAS(t *testing.T) {
	bs := BLASBackends()
	if BLASBackend() != bs[0] || !slices.Contains(bs, "gonum") {
		t.Fatalf("backend %q, available %v", BLASBackend(), bs)
	}
	defer func() {
		if err := UseBLAS(bs[0]); err != nil {
			t.Fatal(err)
		}
	}()
	if err := UseBLAS("gonum"); err != nil || BLASBackend() != "gonum" {
		t.Fatalf("UseBLAS(gonum): %v, backend %q", err, BLASBackend())
	}
	if err := UseBLAS("mkl"); err == nil {
		t.Fatal("UseBLAS(mkl) accepted")
	}
	if !slices.Contains(bs, "openblas") && UseBLAS("openblas") == nil {
		t.Fatal("UseBLAS(openblas) accepted in a build without -tags openblas")
	}
}
