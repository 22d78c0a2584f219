package loraflow

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// DefaultActivityMemory is the memory set aside per concurrent activity
// when Config.ActivityMemoryBytes is 0: TrainLoRA, Evaluate and Merge each
// load the whole base model (plus adapter, optimizer state and
// activations), so a worker runs only as many as its memory holds.
const DefaultActivityMemory = 4 << 30

// memoryBudgetFraction of the worker's memory limit is given to activities;
// the rest is the Go runtime, the SDK and the page cache the store needs.
const memoryBudgetFraction = 0.8

// activitySlots is MaxConcurrentActivityExecutionSize for a worker whose
// memory limit is limit bytes:
//
//	slots = max(1, floor(0.8 × limit / perActivity))
//
// (the SDK's default, 1000, would let one worker load a model per slot).
func activitySlots(limit, perActivity int64) int {
	if perActivity <= 0 {
		perActivity = DefaultActivityMemory
	}
	n := int(float64(limit) * memoryBudgetFraction / float64(perActivity))
	return max(1, n)
}

// memoryLimit is the worker's memory limit in bytes: the cgroup v2 limit
// (a container's memory limit, /sys/fs/cgroup/memory.max) when one is set,
// otherwise the machine's MemTotal from /proc/meminfo; 0 when neither can
// be read.
func memoryLimit() int64 {
	total := memTotal()
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
			return v
		}
	}
	return total
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
