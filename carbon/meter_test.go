package carbon

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestProcCPUSecondsParsesAfterCommandName(t *testing.T) {
	p := newFakeProc(t, "x", 1, 1)
	p.setCPU(1234, 566)
	got, err := procCPUSeconds(p.root)
	if err != nil {
		t.Fatal(err)
	}
	assertNear(t, "cpu seconds", got, 18.0) // (1234+566) ticks / 100
	writeFile(t, p.root+"/self/stat", "1 (short) R 1 2\n")
	if _, err := procCPUSeconds(p.root); err == nil || !strings.Contains(err.Error(), "fields") {
		t.Errorf("truncated stat: err = %v", err)
	}
}

func TestLookupCPU(t *testing.T) {
	cases := []struct {
		model string
		want  string // "" = unknown
		wpt   float64
	}{
		{"Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", "Intel Xeon Platinum 8259CL", 210.0 / 48},
		{"AMD EPYC 7742 64-Core Processor", "AMD EPYC 7742", 225.0 / 128},
		{"Intel(R) Xeon(R) Gold 6226R CPU @ 2.90GHz", "Intel Xeon Gold 6226R", 150.0 / 32},
		{"Intel(R) Core(TM) i7-12700K", "Intel Core i7-12700K", 125.0 / 20},
		{"AMD EPYC", "", 0},               // this development machine: family only
		{"AMD EPYC 7443P 24-Core", "", 0}, // a different part: no prefix match
		{"", "", 0},
	}
	for _, c := range cases {
		s, ok := LookupCPU(c.model)
		if c.want == "" {
			if ok {
				t.Errorf("LookupCPU(%q) = %+v, want unknown", c.model, s)
			}
			continue
		}
		if !ok || s.Name != c.want {
			t.Errorf("LookupCPU(%q) = %+v %v, want %s", c.model, s, ok, c.want)
			continue
		}
		assertNear(t, c.model+" W/thread", s.WattsPerThread(), c.wpt)
	}
}

// TestMeterTDPUtilisation checks the estimate against hand-computed values.
func TestMeterTDPUtilisation(t *testing.T) {
	proc := newFakeProc(t, "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", 4, 16<<20)
	proc.setCPU(100, 50)   // 1.5 s at start
	proc.setRSSkB(2 << 20) // 2 GiB
	clk := newFakeClock()
	m, err := NewMeter(Options{SysfsRoot: t.TempDir(), ProcRoot: proc.root, CountryISO: "FRA", PUE: 1.5, SampleInterval: time.Hour, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	meas := m.Start(context.Background(), "Evaluate")
	clk.advance(4 * time.Second)
	proc.setRSSkB(4 << 20) // 4 GiB from t=4 s
	meas.sample(clk.now())
	clk.advance(6 * time.Second)
	proc.setCPU(1100, 250) // 13.5 s: 12 CPU seconds in 10 s of wall time
	rep := meas.Stop()

	// Hand count. 8259CL: 210 W / 48 threads = 4.375 W per thread.
	// CPU: 4.375 W × 12 s = 52.5 J; average 5.25 W; utilisation 12 / (10 × 4) = 0.3.
	// RAM: trapezoids (2+4)/2 GiB × 4 s + 4 GiB × 6 s = 12 + 24 = 36 GiB·s;
	//      0.3725 W/GiB × 36 = 13.41 J; average 1.341 W; mean 3.6 GiB.
	// Total device 65.91 J; × PUE 1.5 = 98.865 J = 2.74625e-5 kWh; × 56 g/kWh.
	assertNear(t, "CPUSeconds", rep.CPUSeconds, 12)
	assertNear(t, "CPUUtilisation", rep.CPUUtilisation, 0.3)
	assertNear(t, "CPUWattsPerThread", rep.CPUWattsPerThread, 4.375)
	assertNear(t, "CPUPowerW", rep.CPUPowerW, 5.25)
	assertNear(t, "CPUEnergyKWh", rep.CPUEnergyKWh, 52.5/3.6e6)
	assertNear(t, "RAMPowerW", rep.RAMPowerW, 1.341)
	assertNear(t, "RAMEnergyKWh", rep.RAMEnergyKWh, 13.41/3.6e6)
	assertNear(t, "RAMUsedGiB", rep.RAMUsedGiB, 3.6)
	assertNear(t, "RAMPeakGiB", rep.RAMPeakGiB, 4)
	assertNear(t, "RAMTotalGiB", rep.RAMTotalGiB, 16)
	assertNear(t, "EnergyKWh", rep.EnergyKWh, 98.865/3.6e6)
	assertNear(t, "EmissionsKg", rep.EmissionsKg, 98.865/3.6e6*56/1000)
	assertNear(t, "EmissionsRate", rep.EmissionsRateKgPerS, 98.865/3.6e6*56/1000/10)
	if rep.CPUMethod != MethodTDPUtilisation || rep.RAMMethod != MethodRAMEstimate || rep.TrackingMode != "process" {
		t.Errorf("methods: %s mode %s", rep.Method(), rep.TrackingMode)
	}
	if rep.CPUThreads != 4 || rep.CountryISO != "FRA" || rep.CountryName != "France" || rep.Activity != "Evaluate" {
		t.Errorf("report identity: %+v", rep)
	}
}

func TestMeterUnknownCPUUsesFourWattsPerThread(t *testing.T) {
	proc := newFakeProc(t, "AMD EPYC", 2, 4<<20)
	proc.setCPU(0, 0)
	proc.setRSSkB(0)
	clk := newFakeClock()
	m, err := NewMeter(Options{SysfsRoot: t.TempDir(), ProcRoot: proc.root, SampleInterval: time.Hour, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	meas := m.Start(context.Background(), "PrepareData")
	clk.advance(2 * time.Second)
	proc.setCPU(300, 100) // 4 CPU seconds in 2 s on 2 threads: 100 %
	rep := meas.Stop()
	// 4 W × 4 s = 16 J, 8 W average; no RAM in use.
	assertNear(t, "CPUEnergyKWh", rep.CPUEnergyKWh, 16/3.6e6)
	assertNear(t, "CPUPowerW", rep.CPUPowerW, 8)
	assertNear(t, "CPUUtilisation", rep.CPUUtilisation, 1)
	assertNear(t, "RAMEnergyKWh", rep.RAMEnergyKWh, 0)
	// World average, PUE 1: 16 J = 4.444e-6 kWh × 475 g.
	assertNear(t, "EmissionsKg", rep.EmissionsKg, 16/3.6e6*475/1000)
	if rep.CPUMethod != MethodDefaultPerThread || rep.IntensitySource != "world average" {
		t.Errorf("cpu method %q, intensity %q", rep.CPUMethod, rep.IntensitySource)
	}
}

func TestEstimateCPUHandValues(t *testing.T) {
	spec := CPUSpec{TDPW: 200, Threads: 64}
	e := EstimateCPU(spec, true, 30, 60) // 3.125 W/thread × 30 s
	assertNear(t, "energy", e.EnergyJ, 93.75)
	assertNear(t, "power", e.PowerW, 1.5625)
	u := EstimateCPU(CPUSpec{}, false, 30, 60)
	assertNear(t, "unknown energy", u.EnergyJ, 120)
	assertNear(t, "RAM J", EstimateRAMJoules(3*gib*100), 0.3725*300)
}

func TestMeterNoProcNoCrash(t *testing.T) {
	m, err := NewMeter(Options{SysfsRoot: t.TempDir(), ProcRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rep := m.Start(context.Background(), "x").Stop()
	if rep.CPUMethod != MethodNone || rep.RAMMethod != MethodNone || rep.EnergyKWh != 0 {
		t.Errorf("no /proc: %s energy %g", rep.Method(), rep.EnergyKWh)
	}
	if len(rep.Notes) == 0 {
		t.Error("no notes explain the missing sources")
	}
}

// fakeGPU is a GPUSource with a scripted sequence of readings.
type fakeGPU struct {
	readings []GPUReading
	i        int
}

func (g *fakeGPU) Describe() (string, string, int) { return MethodNVML, "Fake GPU 80GB", 2 }
func (g *fakeGPU) Read() (GPUReading, error) {
	if g.i >= len(g.readings) {
		return GPUReading{}, errors.New("exhausted")
	}
	r := g.readings[g.i]
	g.i++
	return r, nil
}
func (g *fakeGPU) Close() error { return nil }

func TestMeterGPUCounterAndPowerSamples(t *testing.T) {
	proc := newFakeProc(t, "AMD EPYC", 2, 4<<20)
	proc.setCPU(0, 0)
	proc.setRSSkB(0)
	for _, tc := range []struct {
		name     string
		readings []GPUReading
		wantJ    float64
		method   string
	}{
		{"counter", []GPUReading{{EnergyJ: 1000}, {EnergyJ: 1900}, {EnergyJ: 3000}}, 2000, MethodNVML},
		// power 100 W → 300 W over 4 s, then 300 W for 6 s: 800 + 1800 J
		{"power", []GPUReading{{EnergyJ: -1, PowerW: 100}, {EnergyJ: -1, PowerW: 300}, {EnergyJ: -1, PowerW: 300}}, 2600, MethodNVMLPowerSamples},
	} {
		clk := newFakeClock()
		m, err := NewMeter(Options{SysfsRoot: t.TempDir(), ProcRoot: proc.root, SampleInterval: time.Hour, GPU: &fakeGPU{readings: tc.readings}, now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		meas := m.Start(context.Background(), "TrainLoRA")
		clk.advance(4 * time.Second)
		meas.sample(clk.now())
		clk.advance(6 * time.Second)
		rep := meas.Stop()
		assertNear(t, tc.name+" GPUEnergyKWh", rep.GPUEnergyKWh, tc.wantJ/3.6e6)
		assertNear(t, tc.name+" GPUPowerW", rep.GPUPowerW, tc.wantJ/10)
		if rep.GPUMethod != tc.method || rep.GPUCount != 2 || rep.GPUModel != "Fake GPU 80GB" {
			t.Errorf("%s: method %q count %d model %q", tc.name, rep.GPUMethod, rep.GPUCount, rep.GPUModel)
		}
	}
}

// TestMeterThisMachine measures a short CPU burn on the real machine and
// logs which method works here. It asserts only what holds everywhere.
func TestMeterThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	m, err := NewMeter(Options{SampleInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	meas := m.Start(context.Background(), "burn")
	deadline := time.Now().Add(150 * time.Millisecond)
	x := 0.0
	for time.Now().Before(deadline) {
		for i := 0; i < 1000; i++ {
			x += float64(i) * 1e-9
		}
	}
	rep := meas.Stop()
	t.Logf("this machine: %s; cpu %q x %d; %.3f CPU s in %.3f s; %.3g W cpu, %.3g W ram; %.3g kWh; notes %v (x=%g)",
		rep.Method(), rep.CPUModel, rep.CPUThreads, rep.CPUSeconds, rep.DurationS, rep.CPUPowerW, rep.RAMPowerW, rep.EnergyKWh, rep.Notes, x)
	if rep.CPUMethod == MethodNone || rep.EnergyKWh <= 0 || rep.RAMUsedGiB <= 0 {
		t.Errorf("no energy measured on a Linux machine: %+v", rep)
	}
	if rep.Samples < 1 {
		t.Errorf("samples = %d, want the sampler to have run", rep.Samples)
	}
}

func TestNewMeterRejectsBadOptions(t *testing.T) {
	if _, err := NewMeter(Options{PUE: 0.8}); err == nil {
		t.Error("PUE 0.8 accepted")
	}
	if _, err := NewMeter(Options{IntensityOverride: -1}); err == nil {
		t.Error("negative intensity accepted")
	}
}

// Read reports the energy so far without ending the measurement; after
// Stop it is Stop's report.
func TestMeasurementReadSoFar(t *testing.T) {
	proc := newFakeProc(t, "AMD EPYC", 2, 4<<20)
	proc.setCPU(0, 0)
	proc.setRSSkB(0)
	clk := newFakeClock()
	m, err := NewMeter(Options{SysfsRoot: t.TempDir(), ProcRoot: proc.root, SampleInterval: time.Hour,
		GPU: &fakeGPU{readings: []GPUReading{{EnergyJ: 1000}, {EnergyJ: 1900}, {EnergyJ: 3000}}}, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	meas := m.Start(context.Background(), "TrainLoRA")
	clk.advance(4 * time.Second)
	mid := meas.Read()
	assertNear(t, "GPU energy so far", mid.GPUEnergyKWh, 900/3.6e6)
	assertNear(t, "duration so far", mid.DurationS, 4)
	clk.advance(6 * time.Second)
	end := meas.Stop()
	assertNear(t, "GPU energy at Stop", end.GPUEnergyKWh, 2000/3.6e6)
	if again := meas.Read(); again.GPUEnergyKWh != end.GPUEnergyKWh || again.DurationS != end.DurationS {
		t.Fatalf("Read after Stop %+v, want Stop's %+v", again, end)
	}
}
