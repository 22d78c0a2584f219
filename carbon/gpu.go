package carbon

import "errors"

// GPUReading is one reading of every GPU a GPUSource watches, summed.
type GPUReading struct {
	// EnergyJ is a cumulative energy counter in joules (NVML's
	// nvmlDeviceGetTotalEnergyConsumption, converted from mJ), or negative
	// when the devices have no such counter.
	EnergyJ float64
	// PowerW is the instantaneous board power, used when there is no counter.
	PowerW float64
}

// GPUSource reads GPU energy. An NVML-backed implementation can be supplied
// through Options.GPU by a build that links NVML; the default build has none
// (no cgo requirement) and reports the GPU term as absent.
type GPUSource interface {
	// Describe returns the method label ("nvml") and the hardware, e.g.
	// "1 x NVIDIA H100 80GB HBM3", with the device count.
	Describe() (method, model string, count int)
	Read() (GPUReading, error)
	Close() error
}

// errNoGPULibrary is what the default build reports for the GPU term.
var errNoGPULibrary = errors.New("no GPU library: no GPU term")

// openDefaultGPU returns the GPU source of the default build: none.
func openDefaultGPU() (GPUSource, error) { return nil, errNoGPULibrary }
