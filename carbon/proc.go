package carbon

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/loraflow/loraflow/internal/procfs"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat. Linux fixes it at 100 for user space on every
// architecture Go supports, so it is a constant rather than a sysconf call
// (which would need cgo).
const clockTicksPerSecond = 100

// procCPUSeconds returns this process's user+system CPU time from
// <procRoot>/self/stat (fields 14 and 15, in clock ticks).
func procCPUSeconds(procRoot string) (float64, error) {
	path := filepath.Join(procRoot, "self", "stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// The command name (field 2) is in parentheses and may contain spaces or
	// parentheses itself: fields are counted after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu time: %s: no ')' closing the command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14 -> f[11], stime field 15 -> f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time: %s: %d fields after the command name, want at least 13", path, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu time: %s: utime %q stime %q not integers", path, f[11], f[12])
	}
	return float64(ut+st) / clockTicksPerSecond, nil
}

// procRSSBytes returns this process's resident set size from
// <procRoot>/self/status (VmRSS, in kB).
func procRSSBytes(procRoot string) (float64, error) {
	path := filepath.Join(procRoot, "self", "status")
	v, err := procfs.KBField(path, "VmRSS:")
	if err != nil {
		return 0, fmt.Errorf("memory in use: %w", err)
	}
	return v * 1024, nil
}

// memTotalBytes returns MemTotal from <procRoot>/meminfo.
func memTotalBytes(procRoot string) (float64, error) {
	v, err := procfs.KBField(filepath.Join(procRoot, "meminfo"), "MemTotal:")
	if err != nil {
		return 0, err
	}
	return v * 1024, nil
}

// cpuInfo is what /proc/cpuinfo says about the machine's processors.
type cpuInfo struct {
	Model   string // first "model name" (x86) or "Model"/"cpu model" line; "" when absent
	Threads int    // number of "processor" entries (logical CPUs visible here)
}

func readCPUInfo(procRoot string) (cpuInfo, error) {
	path := filepath.Join(procRoot, "cpuinfo")
	b, err := os.ReadFile(path)
	if err != nil {
		return cpuInfo{}, err
	}
	var ci cpuInfo
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		switch k {
		case "processor":
			ci.Threads++
		case "model name", "cpu model", "Model":
			if ci.Model == "" {
				ci.Model = v
			}
		}
	}
	return ci, sc.Err()
}
