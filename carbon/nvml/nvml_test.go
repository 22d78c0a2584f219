package nvml

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebitengine/purego"

	"github.com/loraflow/loraflow/carbon"
)

// buildFake compiles testdata/fakenvml.c into a shared library.
func buildFake(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler to build the fake NVML library")
	}
	out := filepath.Join(t.TempDir(), "libnvidia-ml-fake.so")
	if b, err := exec.Command(cc, "-shared", "-fPIC", "-o", out, "testdata/fakenvml.c").CombinedOutput(); err != nil {
		t.Fatalf("building fake NVML: %v\n%s", err, b)
	}
	return out
}

func fakeControl(t *testing.T, path string) (setMode func(int32), addEnergy func(uint64)) {
	t.Helper()
	lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Fatal(err)
	}
	purego.RegisterLibFunc(&setMode, lib, "fakeSetMode")
	purego.RegisterLibFunc(&addEnergy, lib, "fakeAddEnergy")
	return setMode, addEnergy
}

func TestOpenMissingLibrary(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "libnvidia-ml.so.1"))
	if err == nil || !strings.Contains(err.Error(), "loading") {
		t.Fatalf("err = %v", err)
	}
	// Registered through init: on a machine without the library NewMeter
	// reports the GPU term as absent, with the reason in its notes.
	m, err := carbon.NewMeter(carbon.Options{SysfsRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("nvidia-smi"); err == nil {
		t.Skip("this machine has an NVIDIA driver")
	}
	rep := m.Start(context.Background(), "x").Stop()
	if rep.GPUMethod != carbon.MethodNoGPULibrary || !strings.Contains(strings.Join(m.Notes(), " "), "libnvidia-ml") {
		t.Errorf("GPU method %q, notes %v", rep.GPUMethod, m.Notes())
	}
}

// TestFakeLibrary drives the binding against a compiled stand-in library:
// symbol lookup, argument passing, unit conversion and the power fallback.
func TestFakeLibrary(t *testing.T) {
	path := buildFake(t)
	setMode, addEnergy := fakeControl(t, path)

	setMode(0)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	method, model, n := s.Describe()
	if method != carbon.MethodNVML || model != "Fake NVIDIA H100" || n != 2 {
		t.Errorf("Describe = %q %q %d", method, model, n)
	}
	r0, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if r0.EnergyJ != 6000 { // (1e6 + 5e6) mJ
		t.Errorf("EnergyJ = %g, want 6000", r0.EnergyJ)
	}
	addEnergy(1500) // device 0 +1.5 J, device 1 +3 J
	r1, _ := s.Read()
	if d := r1.EnergyJ - r0.EnergyJ; d != 4.5 {
		t.Errorf("energy delta = %g J, want 4.5", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(); err == nil {
		t.Error("Read after Close succeeded")
	}

	setMode(1) // no energy counters: power samples
	p, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if method, _, _ := p.Describe(); method != carbon.MethodNVMLPowerSamples {
		t.Errorf("power-only method %q", method)
	}
	rp, err := p.Read()
	if err != nil || rp.EnergyJ >= 0 || rp.PowerW != 400.5 {
		t.Errorf("power reading %+v %v, want 150 + 250.5 W", rp, err)
	}
	// Through a Meter.
	m, err := carbon.NewMeter(carbon.Options{SysfsRoot: t.TempDir(), GPU: p})
	if err != nil {
		t.Fatal(err)
	}
	rep := m.Start(context.Background(), "TrainLoRA").Stop()
	if rep.GPUMethod != carbon.MethodNVMLPowerSamples || rep.GPUCount != 2 || rep.GPUModel != "Fake NVIDIA H100" {
		t.Errorf("report GPU %q %d %q", rep.GPUMethod, rep.GPUCount, rep.GPUModel)
	}
	p.Close()

	setMode(2)
	if _, err := Open(path); !errors.Is(err, carbon.ErrNoGPU) {
		t.Errorf("no devices: err = %v", err)
	}
}
