package carbon

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCounterDeltaWraparound(t *testing.T) {
	const max = 262143328850
	cases := []struct{ prev, cur, want uint64 }{
		{100, 350, 250},
		{max - 1000, 500, 1500}, // wrapped once
		{7, 7, 0},
	}
	for _, c := range cases {
		if got := counterDelta(c.prev, c.cur, max); got != c.want {
			t.Errorf("counterDelta(%d, %d) = %d, want %d", c.prev, c.cur, got, c.want)
		}
	}
}

func TestDiscoverRAPLPicksPackagesOnly(t *testing.T) {
	sys := t.TempDir()
	const mr = 1 << 32
	fakeZone(t, sys, "intel-rapl:0", "package-0", 1, mr)
	fakeZone(t, sys, "intel-rapl:0:0", "core", 1, mr) // part of package-0: never summed
	fakeZone(t, sys, "intel-rapl:0:1", "dram", 1, mr) // outside the package: RAM term
	fakeZone(t, sys, "intel-rapl:1", "package-1", 1, mr)
	fakeZone(t, sys, "intel-rapl:1:0", "uncore", 1, mr)
	fakeZone(t, sys, "intel-rapl:2", "psys", 1, mr)           // platform: contains the packages
	fakeZone(t, sys, "intel-rapl-mmio:0", "package-0", 1, mr) // MMIO duplicate of package-0
	r, err := discoverRAPL(sys)
	if err != nil {
		t.Fatal(err)
	}
	var pk, dr []string
	for _, z := range r.Packages {
		pk = append(pk, filepath.Base(z.Dir))
	}
	for _, z := range r.DRAM {
		dr = append(dr, filepath.Base(z.Dir))
	}
	if strings.Join(pk, ",") != "intel-rapl:0,intel-rapl:1" {
		t.Errorf("packages = %v, want intel-rapl:0,intel-rapl:1", pk)
	}
	if strings.Join(dr, ",") != "intel-rapl:0:1" {
		t.Errorf("dram = %v, want intel-rapl:0:1", dr)
	}
}

func TestDiscoverRAPLMissingAndUnreadable(t *testing.T) {
	// No powercap directory at all (containers, VMs, macOS).
	if _, err := discoverRAPL(t.TempDir()); err == nil {
		t.Error("no powercap tree: want an error")
	}
	// A package whose energy_uj cannot be read, and one with no max range: no usable zone.
	sys := t.TempDir()
	z := fakeZone(t, sys, "intel-rapl:0", "package-0", 1, 100)
	makeUnreadable(t, filepath.Join(z, "energy_uj"))
	z1 := fakeZone(t, sys, "intel-rapl:1", "package-1", 1, 100)
	makeUnreadable(t, filepath.Join(z1, "max_energy_range_uj"))
	_, err := discoverRAPL(sys)
	if err == nil || !strings.Contains(err.Error(), "no readable package zone") {
		t.Errorf("unreadable zones: err = %v", err)
	}
	// A missing domain beside a good one: the good one is used.
	fakeZone(t, sys, "intel-rapl:2", "package-2", 5, 100)
	r, err := discoverRAPL(sys)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Packages) != 1 || filepath.Base(r.Packages[0].Dir) != "intel-rapl:2" {
		t.Errorf("packages = %+v, want only intel-rapl:2", r.Packages)
	}
	// AMD naming.
	sys2 := t.TempDir()
	fakeZone(t, sys2, "amd-rapl:0", "package-0", 1, 100)
	if r, err := discoverRAPL(sys2); err != nil || len(r.Packages) != 1 {
		t.Errorf("amd-rapl: %v %+v", err, r)
	}
}

// TestMeterRAPLWraparound drives a Meter over a fake sysfs tree: two
// packages, one of which wraps, a DRAM zone, and a zone that becomes
// unreadable for one sample.
func TestMeterRAPLWraparound(t *testing.T) {
	sys := t.TempDir()
	const mr = 1_000_000_000 // 1 kJ range
	p0 := fakeZone(t, sys, "intel-rapl:0", "package-0", 999_000_000, mr)
	p1 := fakeZone(t, sys, "intel-rapl:1", "package-1", 10_000_000, mr)
	d0 := fakeZone(t, sys, "intel-rapl:0:0", "dram", 0, mr)
	proc := newFakeProc(t, "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", 4, 8<<20)
	proc.setCPU(0, 0)
	proc.setRSSkB(1 << 20)
	clk := newFakeClock()
	m, err := NewMeter(Options{SysfsRoot: sys, ProcRoot: proc.root, CountryISO: "DEU", SampleInterval: time.Hour, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if m.CPUMethod() != MethodRAPL {
		t.Fatalf("CPUMethod = %q, notes %v", m.CPUMethod(), m.Notes())
	}
	meas := m.Start(context.Background(), "TrainLoRA")

	clk.advance(5 * time.Second)
	setEnergy(t, p0, 999_500_000) // +0.5 J
	setEnergy(t, p1, 13_000_000)  // +3 J
	setEnergy(t, d0, 2_000_000)   // +2 J
	meas.sample(clk.now())

	// package-1 becomes unreadable: this sample is skipped, nothing is lost.
	makeUnreadable(t, filepath.Join(p1, "energy_uj"))
	clk.advance(5 * time.Second)
	setEnergy(t, p0, 2_000_000) // wrapped: +(1e9-999.5e6) + 2e6 = 2.5 J
	meas.sample(clk.now())

	setEnergy(t, p1, 20_000_000) // readable again: +7 J since the last good reading
	setEnergy(t, p0, 4_000_000)  // +2 J
	setEnergy(t, d0, 3_000_000)  // +1 J
	clk.advance(10 * time.Second)
	rep := meas.Stop()

	wantCPUJ := 0.5 + 3 + 2.5 + 7 + 2 // 15 J
	wantRAMJ := 3.0
	assertNear(t, "DurationS", rep.DurationS, 20)
	assertNear(t, "CPUEnergyKWh", rep.CPUEnergyKWh, wantCPUJ/3.6e6)
	assertNear(t, "CPUPowerW", rep.CPUPowerW, wantCPUJ/20)
	assertNear(t, "RAMEnergyKWh", rep.RAMEnergyKWh, wantRAMJ/3.6e6)
	assertNear(t, "EnergyKWh", rep.EnergyKWh, (wantCPUJ+wantRAMJ)/3.6e6)
	assertNear(t, "EmissionsKg", rep.EmissionsKg, (wantCPUJ+wantRAMJ)/3.6e6*381/1000)
	if rep.CPUMethod != MethodRAPL || rep.RAMMethod != MethodRAPLDRAM || rep.TrackingMode != "machine" {
		t.Errorf("methods cpu=%q ram=%q mode=%q", rep.CPUMethod, rep.RAMMethod, rep.TrackingMode)
	}
	if rep.GPUMethod != MethodNoGPULibrary {
		t.Errorf("GPUMethod = %q", rep.GPUMethod)
	}
	found := false
	for _, n := range rep.Notes {
		found = found || strings.Contains(n, "intel-rapl:1")
	}
	if !found {
		t.Errorf("notes %v do not mention the unreadable zone", rep.Notes)
	}
	if again := meas.Stop(); again.EnergyKWh != rep.EnergyKWh {
		t.Error("Stop is not idempotent")
	}
}

// TestMeterRAPLUnreadableFallsBack: powercap present but root-only / broken
// makes the Meter estimate from TDP instead of failing.
func TestMeterRAPLUnreadableFallsBack(t *testing.T) {
	sys := t.TempDir()
	z := fakeZone(t, sys, "intel-rapl:0", "package-0", 1, 100)
	makeUnreadable(t, filepath.Join(z, "energy_uj"))
	proc := newFakeProc(t, "AMD EPYC 7742 64-Core Processor", 2, 4<<20)
	proc.setCPU(0, 0)
	proc.setRSSkB(1024)
	m, err := NewMeter(Options{SysfsRoot: sys, ProcRoot: proc.root})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.CPUMethod(); got != MethodTDPUtilisation {
		t.Errorf("CPUMethod = %q, want %q", got, MethodTDPUtilisation)
	}
	if len(m.Notes()) == 0 || !strings.Contains(strings.Join(m.Notes(), " "), "rapl") {
		t.Errorf("notes %v should explain the RAPL fallback", m.Notes())
	}
}
