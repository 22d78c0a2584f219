package lora

import (
	"strings"
	"testing"
)

// TestDefaultBackend: LORAFLOW_BLAS forces a backend the binary has and is
// refused, named, for one it lacks; otherwise the table's winner for the
// CPU family is chosen where the binary has it, and an unmeasured family
// keeps the binary's first backend (OpenBLAS where built in).
func TestDefaultBackend(t *testing.T) {
	zen3 := cpuFamily{vendor: "AuthenticAMD", family: 25}
	zen5 := cpuFamily{vendor: "AuthenticAMD", family: 26, avx512: true}
	intel := cpuFamily{vendor: "GenuineIntel", family: 6, avx512: true}
	all := []string{"openblas", "go", "gonum"}
	for _, tc := range []struct {
		available []string
		env       string
		fam       cpuFamily
		want      string
	}{
		{all, "", zen3, "go"},
		{all, "auto", zen5, "go"},
		{all, "", intel, "openblas"},
		{all, "", cpuFamily{family: -1}, "openblas"},
		{all, "openblas", zen3, "openblas"},
		{all, " gonum ", zen3, "gonum"},
		{[]string{"openblas", "gonum"}, "", zen3, "openblas"}, // no AVX2: no go backend
		{[]string{"go", "gonum"}, "", intel, "go"},
	} {
		got, err := defaultBackend(tc.available, tc.env, tc.fam)
		if err != nil || got != tc.want {
			t.Errorf("defaultBackend(%v, %q, %+v) = %q, %v; want %q", tc.available, tc.env, tc.fam, got, err, tc.want)
		}
	}
	for _, env := range []string{"mkl", "openblas"} {
		_, err := defaultBackend([]string{"go", "gonum"}, env, zen3)
		if err == nil || !strings.Contains(err.Error(), EnvBLAS+"="+env) {
			t.Errorf("%s=%s: %v, want a refusal naming the variable", EnvBLAS, env, err)
		}
	}
	if fam := thisCPU(); fam.vendor == "" || fam.family < 0 {
		t.Logf("CPU family unknown here (%+v): the binary's first backend is the default", fam)
	}
}
