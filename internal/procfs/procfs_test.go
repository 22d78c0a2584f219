package procfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKBField(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status")
	os.WriteFile(p, []byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t1024 kB\nVmBad:\tx kB\nVmNone:\n"), 0o644)
	for key, want := range map[string]float64{"VmHWM:": 2048, "VmRSS:": 1024} {
		if v, err := KBField(p, key); err != nil || v != want {
			t.Errorf("%s = %g, %v; want %g", key, v, err, want)
		}
	}
	for key, msg := range map[string]string{"VmBad:": `VmBad: "x"`, "VmNone:": "no VmNone: line", "VmSwap:": "no VmSwap: line"} {
		if _, err := KBField(p, key); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want one containing %q", key, err, msg)
		}
	}
	if _, err := KBField(filepath.Join(t.TempDir(), "absent"), "VmRSS:"); err == nil {
		t.Error("absent file read")
	}
}

func TestSelf(t *testing.T) {
	if _, err := os.Stat(SelfStatus); err != nil {
		t.Skip(err)
	}
	rss, err1 := RSS()
	peak, err2 := PeakRSS()
	if err1 != nil || err2 != nil || rss <= 0 || peak < rss {
		t.Fatalf("RSS %d (%v), peak %d (%v)", rss, err1, peak, err2)
	}
}
