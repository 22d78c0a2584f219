// Package nvml reads NVIDIA GPU energy through the NVIDIA Management Library,
// loaded at run time with dlopen (github.com/ebitengine/purego), so neither
// cgo nor the library is needed to build: where libnvidia-ml.so.1 is absent,
// Open fails and the carbon report says "no GPU library: no GPU term".
//
// Importing the package registers it with carbon.NewMeter:
//
//	import _ "github.com/loraflow/loraflow/carbon/nvml"
//
// Energy comes from nvmlDeviceGetTotalEnergyConsumption (millijoules since
// the driver loaded; Volta and later). Where any device lacks that counter
// the source reports power from nvmlDeviceGetPowerUsage (milliwatts) instead,
// and carbon integrates the samples ("nvml-power-samples").
package nvml
