package carbon

import (
	"errors"
	"sync"
)

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

// ErrNoGPU is returned by a GPUOpener that loaded its library but found no
// device.
var ErrNoGPU = errors.New("no GPU")

// GPUOpener opens a GPU source. Packages such as carbon/nvml register one in
// their init function, so a binary opts in with a blank import:
//
//	import _ "github.com/loraflow/loraflow/carbon/nvml"
type GPUOpener func() (GPUSource, error)

var (
	gpuMu      sync.Mutex
	gpuOpeners []GPUOpener
)

// RegisterGPUOpener adds an opener tried by NewMeter when Options.GPU is nil.
func RegisterGPUOpener(o GPUOpener) {
	gpuMu.Lock()
	defer gpuMu.Unlock()
	gpuOpeners = append(gpuOpeners, o)
}

// openDefaultGPU tries the registered openers in order. With none registered
// (the default build), the GPU term is absent for want of a library.
func openDefaultGPU() (GPUSource, error) {
	gpuMu.Lock()
	openers := append([]GPUOpener(nil), gpuOpeners...)
	gpuMu.Unlock()
	if len(openers) == 0 {
		return nil, errNoGPULibrary
	}
	var errs []error
	for _, o := range openers {
		s, err := o()
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
