package nvml

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ebitengine/purego"

	"github.com/loraflow/loraflow/carbon"
)

// DefaultLibrary is the soname the NVIDIA driver installs.
const DefaultLibrary = "libnvidia-ml.so.1"

// nvmlReturn codes used here (nvml.h).
const (
	nvmlSuccess        = 0
	nvmlNotSupported   = 3
	nvmlDeviceNameSize = 96 // NVML_DEVICE_NAME_V2_BUFFER_SIZE
)

func init() {
	carbon.RegisterGPUOpener(func() (carbon.GPUSource, error) { return Open(DefaultLibrary) })
}

// Source is a carbon.GPUSource over every GPU NVML sees.
type Source struct {
	lib     uintptr
	devices []uintptr
	names   []string
	counter bool // every device has an energy counter

	mu sync.Mutex

	shutdown    func() int32
	energy      func(dev uintptr, mJ *uint64) int32
	power       func(dev uintptr, mW *uint32) int32
	errorString func(ret int32) string
	closed      bool
}

// Open loads the library at path (DefaultLibrary when empty), initialises
// NVML and enumerates its devices. It returns carbon.ErrNoGPU (wrapped) when
// NVML works but sees no device.
func Open(path string) (*Source, error) {
	if path == "" {
		path = DefaultLibrary
	}
	lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("nvml: loading %s: %w", path, err)
	}
	s := &Source{lib: lib}
	ok := false
	defer func() {
		if !ok {
			purego.Dlclose(lib)
		}
	}()
	var (
		initFn   func() int32
		countFn  func(n *uint32) int32
		handleFn func(i uint32, dev *uintptr) int32
		nameFn   func(dev uintptr, buf *byte, n uint32) int32
	)
	for _, f := range []struct {
		fptr any
		name string
	}{
		{&initFn, "nvmlInit_v2"}, {&s.shutdown, "nvmlShutdown"}, {&countFn, "nvmlDeviceGetCount_v2"},
		{&handleFn, "nvmlDeviceGetHandleByIndex_v2"}, {&nameFn, "nvmlDeviceGetName"},
		{&s.energy, "nvmlDeviceGetTotalEnergyConsumption"}, {&s.power, "nvmlDeviceGetPowerUsage"},
		{&s.errorString, "nvmlErrorString"},
	} {
		sym, err := purego.Dlsym(lib, f.name)
		if err != nil {
			return nil, fmt.Errorf("nvml: %s: symbol %s: %w", path, f.name, err)
		}
		purego.RegisterFunc(f.fptr, sym)
	}
	if r := initFn(); r != nvmlSuccess {
		return nil, fmt.Errorf("nvml: nvmlInit_v2: %s", s.errorString(r))
	}
	defer func() {
		if !ok {
			s.shutdown()
		}
	}()
	var n uint32
	if r := countFn(&n); r != nvmlSuccess {
		return nil, fmt.Errorf("nvml: nvmlDeviceGetCount_v2: %s", s.errorString(r))
	}
	if n == 0 {
		return nil, fmt.Errorf("nvml: %w", carbon.ErrNoGPU)
	}
	s.counter = true
	for i := uint32(0); i < n; i++ {
		var dev uintptr
		if r := handleFn(i, &dev); r != nvmlSuccess {
			return nil, fmt.Errorf("nvml: device %d: nvmlDeviceGetHandleByIndex_v2: %s", i, s.errorString(r))
		}
		buf := make([]byte, nvmlDeviceNameSize)
		name := fmt.Sprintf("GPU %d", i)
		if r := nameFn(dev, &buf[0], uint32(len(buf))); r == nvmlSuccess {
			if j := bytes.IndexByte(buf, 0); j >= 0 {
				buf = buf[:j]
			}
			name = string(buf)
		}
		var mJ uint64
		if r := s.energy(dev, &mJ); r != nvmlSuccess {
			s.counter = false
		}
		var mW uint32
		if !s.counter {
			if r := s.power(dev, &mW); r != nvmlSuccess {
				return nil, fmt.Errorf("nvml: device %d (%s): neither energy counter nor power reading: %s", i, name, s.errorString(r))
			}
		}
		s.devices = append(s.devices, dev)
		s.names = append(s.names, name)
	}
	ok = true
	return s, nil
}

// Describe implements carbon.GPUSource.
func (s *Source) Describe() (method, model string, count int) {
	method = carbon.MethodNVML
	if !s.counter {
		method = carbon.MethodNVMLPowerSamples
	}
	var distinct []string
	for _, n := range s.names {
		found := false
		for _, d := range distinct {
			found = found || d == n
		}
		if !found {
			distinct = append(distinct, n)
		}
	}
	return method, strings.Join(distinct, "+"), len(s.devices)
}

// Read implements carbon.GPUSource: summed energy in joules (or -1 with the
// summed power in watts when a device has no counter).
func (s *Source) Read() (carbon.GPUReading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return carbon.GPUReading{}, errors.New("nvml: source closed")
	}
	if s.counter {
		var total float64
		for i, dev := range s.devices {
			var mJ uint64
			if r := s.energy(dev, &mJ); r != nvmlSuccess {
				return carbon.GPUReading{}, fmt.Errorf("nvml: device %d: nvmlDeviceGetTotalEnergyConsumption: %s", i, s.errorString(r))
			}
			total += float64(mJ) / 1000
		}
		return carbon.GPUReading{EnergyJ: total}, nil
	}
	var watts float64
	for i, dev := range s.devices {
		var mW uint32
		if r := s.power(dev, &mW); r != nvmlSuccess {
			return carbon.GPUReading{}, fmt.Errorf("nvml: device %d: nvmlDeviceGetPowerUsage: %s", i, s.errorString(r))
		}
		watts += float64(mW) / 1000
	}
	return carbon.GPUReading{EnergyJ: -1, PowerW: watts}, nil
}

// Close shuts NVML down and unloads the library.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if r := s.shutdown(); r != nvmlSuccess {
		err = fmt.Errorf("nvml: nvmlShutdown: %s", s.errorString(r))
	}
	if cerr := purego.Dlclose(s.lib); cerr != nil && err == nil {
		err = fmt.Errorf("nvml: dlclose: %w", cerr)
	}
	return err
}

var _ carbon.GPUSource = (*Source)(nil)
