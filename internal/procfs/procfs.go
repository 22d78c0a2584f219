// Package procfs reads the few Linux /proc figures loraflow reports: the
// kB-valued lines of /proc/<pid>/status and /proc/meminfo (proc(5): "VmRSS:
// 1234 kB"), the process's resident set and its high-water mark.
package procfs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// SelfStatus is this process's status file.
const SelfStatus = "/proc/self/status"

// KBField returns the number on the line of path that starts with key (for
// example "VmRSS:" or "MemTotal:"), in the file's unit (kB for the fields
// above).
func KBField(path, key string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key) {
			continue
		}
		f := strings.Fields(line[len(key):])
		if len(f) == 0 {
			break
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s %q: %w", path, key, f[0], err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// SelfBytes returns the kB field key of /proc/self/status in bytes.
func SelfBytes(key string) (int64, error) {
	v, err := KBField(SelfStatus, key)
	if err != nil {
		return 0, err
	}
	return int64(v) * 1024, nil
}

// RSS returns the process's resident set size in bytes (VmRSS).
func RSS() (int64, error) { return SelfBytes("VmRSS:") }

// PeakRSS returns the process's peak resident set size in bytes (VmHWM).
func PeakRSS() (int64, error) { return SelfBytes("VmHWM:") }

// ResetPeakRSS resets the process's peak RSS counter (writes 5 to
// /proc/self/clear_refs, proc(5)), for benchmarks that measure one operation.
func ResetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// MemoryLimit is the memory this process may use, in bytes: the cgroup v2
// limit (a container's memory limit, /sys/fs/cgroup/memory.max) when one is
// set and below the machine's, otherwise MemTotal from /proc/meminfo; 0
// when neither can be read.
func MemoryLimit() int64 {
	var total int64
	if kb, err := KBField("/proc/meminfo", "MemTotal:"); err == nil {
		total = int64(kb) << 10
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
			return v
		}
	}
	return total
}
