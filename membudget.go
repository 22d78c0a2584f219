package loraflow

import "github.com/loraflow/loraflow/internal/procfs"

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

// memoryLimit is the worker's memory limit in bytes (procfs.MemoryLimit:
// the cgroup v2 limit when one is set, otherwise MemTotal; 0 when neither
// can be read).
func memoryLimit() int64 { return procfs.MemoryLimit() }
