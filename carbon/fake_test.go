package carbon

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock shared with the sampler goroutine.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)}
}
func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// Replace whatever is there (tests turn files into directories to make
	// them unreadable even for root).
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeUnreadable replaces a file with a directory: reading it fails even as root.
func makeUnreadable(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// fakeProc writes a proc tree: self/stat with the given utime and stime
// ticks, self/status with VmRSS, cpuinfo with n processors of model, meminfo.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T, model string, threads int, memTotalKB int64) *fakeProc {
	p := &fakeProc{t: t, root: filepath.Join(t.TempDir(), "proc")}
	var ci string
	for i := 0; i < threads; i++ {
		ci += fmt.Sprintf("processor\t: %d\nvendor_id\t: X\nmodel name\t: %s\ncpu MHz\t\t: 2000.000\n\n", i, model)
	}
	writeFile(t, filepath.Join(p.root, "cpuinfo"), ci)
	writeFile(t, filepath.Join(p.root, "meminfo"), fmt.Sprintf("MemTotal:       %d kB\nMemFree:         1000 kB\n", memTotalKB))
	return p
}

func (p *fakeProc) setCPU(utime, stime int) {
	// The command name contains spaces and a ')' to exercise the parser.
	stat := fmt.Sprintf("4242 (lora worker) x) R 1 4242 4242 0 -1 4194304 97 0 0 0 %d %d 0 0 20 0 1 0 30162 3133440 381 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n", utime, stime)
	writeFile(p.t, filepath.Join(p.root, "self", "stat"), stat)
}

func (p *fakeProc) setRSSkB(kb int64) {
	writeFile(p.t, filepath.Join(p.root, "self", "status"), fmt.Sprintf("Name:\tworker\nVmPeak:\t 9999999 kB\nVmRSS:\t %d kB\nThreads:\t8\n", kb))
}

// fakeZone writes one powercap zone.
func fakeZone(t *testing.T, sysRoot, dir, name string, energy, maxRange uint64) string {
	t.Helper()
	z := filepath.Join(sysRoot, "sys", "class", "powercap", dir)
	writeFile(t, filepath.Join(z, "name"), name+"\n")
	writeFile(t, filepath.Join(z, "energy_uj"), fmt.Sprintf("%d\n", energy))
	writeFile(t, filepath.Join(z, "max_energy_range_uj"), fmt.Sprintf("%d\n", maxRange))
	return z
}

func setEnergy(t *testing.T, zone string, uj uint64) {
	t.Helper()
	writeFile(t, filepath.Join(zone, "energy_uj"), fmt.Sprintf("%d\n", uj))
}

func near(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	s := b
	if s < 0 {
		s = -s
	}
	return d <= 1e-9*s+1e-15
}

func assertNear(t *testing.T, what string, got, want float64) {
	t.Helper()
	if !near(got, want) {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}
