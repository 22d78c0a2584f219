package carbon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// raplZone is one powercap energy counter (a CPU package, or a package's DRAM
// sub-zone).
type raplZone struct {
	Dir      string // e.g. /sys/class/powercap/intel-rapl:0
	Name     string // contents of the zone's "name" file, e.g. "package-0", "dram"
	MaxRange uint64 // max_energy_range_uj: the counter wraps back to 0 after this
}

// raplReader reads the package (and, where present, DRAM) energy counters of
// the Linux powercap framework. Only top-level package zones are summed for
// CPU energy; their core/uncore sub-zones are parts of the package and would be
// counted twice. "psys" (whole platform) zones are skipped for the same reason.
// DRAM sub-zones are outside the package and give RAM energy.
type raplReader struct {
	Packages []raplZone
	DRAM     []raplZone
}

// isTopLevelZone reports whether a powercap entry name like "intel-rapl:0" is
// a top-level zone ("intel-rapl:0:1" is a sub-zone).
func isTopLevelZone(base string) bool {
	return strings.Count(base, ":") == 1
}

// discoverRAPL finds readable RAPL zones under sysfsRoot. It returns an error
// (never panics) when there are none or they cannot be read, for example the
// energy_uj files being root-only (Linux 5.10 and later) or absent in a VM.
func discoverRAPL(sysfsRoot string) (*raplReader, error) {
	base := filepath.Join(sysfsRoot, "sys", "class", "powercap")
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("rapl: %w", err)
	}
	type cand struct {
		zone   raplZone
		parent string // top-level zone of a sub-zone
	}
	var tops, subs []cand
	var problems []string
	for _, e := range entries {
		b := e.Name()
		isRAPL := strings.HasPrefix(b, "intel-rapl") || strings.HasPrefix(b, "amd-rapl")
		if !isRAPL || !strings.Contains(b, ":") {
			continue // control-type directories like "intel-rapl" itself, or other powercap drivers
		}
		dir := filepath.Join(base, b)
		name := readTrimmed(filepath.Join(dir, "name"))
		z := raplZone{Dir: dir, Name: name}
		if _, err := readUint(filepath.Join(dir, "energy_uj")); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		mr, err := readUint(filepath.Join(dir, "max_energy_range_uj"))
		if err != nil || mr == 0 {
			problems = append(problems, fmt.Sprintf("%s: no usable max_energy_range_uj", dir))
			continue
		}
		z.MaxRange = mr
		if isTopLevelZone(b) {
			tops = append(tops, cand{zone: z})
		} else {
			subs = append(subs, cand{zone: z, parent: b[:strings.LastIndex(b, ":")]})
		}
	}
	r := &raplReader{}
	// Prefer the MSR interface ("intel-rapl:N") over the MMIO duplicate of the
	// same package ("intel-rapl-mmio:N"); use MMIO only when nothing else is there.
	hasMSR := false
	for _, c := range tops {
		if !strings.Contains(filepath.Base(c.zone.Dir), "-mmio") && isPackageName(c.zone.Name) {
			hasMSR = true
		}
	}
	for _, c := range tops {
		mmio := strings.Contains(filepath.Base(c.zone.Dir), "-mmio")
		switch {
		case c.zone.Name == "dram":
			r.DRAM = append(r.DRAM, c.zone)
		case c.zone.Name == "psys":
			// platform zone includes the packages: skip
		case mmio && hasMSR:
		case isPackageName(c.zone.Name) || c.zone.Name == "":
			r.Packages = append(r.Packages, c.zone)
		}
	}
	for _, c := range subs {
		if c.zone.Name == "dram" && !strings.Contains(c.parent, "-mmio") {
			r.DRAM = append(r.DRAM, c.zone)
		}
	}
	sort.Slice(r.Packages, func(i, j int) bool { return r.Packages[i].Dir < r.Packages[j].Dir })
	sort.Slice(r.DRAM, func(i, j int) bool { return r.DRAM[i].Dir < r.DRAM[j].Dir })
	if len(r.Packages) == 0 {
		if len(problems) > 0 {
			return nil, fmt.Errorf("rapl: no readable package zone under %s: %s", base, strings.Join(problems, "; "))
		}
		return nil, fmt.Errorf("rapl: no package zone under %s", base)
	}
	return r, nil
}

func isPackageName(n string) bool { return strings.HasPrefix(n, "package") }

// raplCounters holds one reading of every zone, in microjoules.
type raplCounters struct {
	Packages []uint64
	DRAM     []uint64
}

// read reads all zones. A zone that has become unreadable makes the whole
// reading fail, so that the caller keeps its previous reading and never mixes
// partial sums.
func (r *raplReader) read() (raplCounters, error) {
	var c raplCounters
	for _, z := range r.Packages {
		v, err := readUint(filepath.Join(z.Dir, "energy_uj"))
		if err != nil {
			return raplCounters{}, err
		}
		c.Packages = append(c.Packages, v)
	}
	for _, z := range r.DRAM {
		v, err := readUint(filepath.Join(z.Dir, "energy_uj"))
		if err != nil {
			return raplCounters{}, err
		}
		c.DRAM = append(c.DRAM, v)
	}
	return c, nil
}

// counterDelta returns the energy between two readings of one counter that
// wraps back to zero after maxRange microjoules. It assumes at most one wrap
// between readings, which the background sampler guarantees by reading far
// more often than a wrap takes (about 262 kJ range: 15 minutes at 300 W).
func counterDelta(prev, cur, maxRange uint64) uint64 {
	if cur >= prev {
		return cur - prev
	}
	return maxRange - prev + cur
}

// deltaJoules sums package and DRAM energy between two readings, in joules.
func (r *raplReader) deltaJoules(prev, cur raplCounters) (pkgJ, dramJ float64) {
	for i, z := range r.Packages {
		pkgJ += float64(counterDelta(prev.Packages[i], cur.Packages[i], z.MaxRange)) / 1e6
	}
	for i, z := range r.DRAM {
		dramJ += float64(counterDelta(prev.DRAM[i], cur.DRAM[i], z.MaxRange)) / 1e6
	}
	return pkgJ, dramJ
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return 0, fmt.Errorf("%s: permission denied (RAPL counters are root-only on Linux 5.10+)", path)
		}
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
