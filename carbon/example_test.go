package carbon_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/loraflow/loraflow/carbon"
)

func Example() {
	m, err := carbon.NewMeter(carbon.Options{CountryISO: "FRA", PUE: 1.2})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	meas := m.Start(context.Background(), "TrainLoRA")
	// ... the activity's work ...
	rep := meas.Stop()
	_ = carbon.WriteCSV(os.Stdout, true, carbon.RunInfo{RunID: "run-1"}, rep)
	fmt.Println(rep.Method(), rep.IntensityGPerKWh)
}

func ExampleModelCardBlock() {
	total := carbon.Report{
		EmissionsKg: 0.0123, PUE: 1, IntensityGPerKWh: 56, IntensitySource: "country FRA, OWID 2023 average",
		CountryName: "France", CPUThreads: 2, CPUModel: "AMD EPYC",
		CPUMethod: carbon.MethodDefaultPerThread, GPUMethod: carbon.MethodNoGPULibrary, RAMMethod: carbon.MethodRAMEstimate,
		End: time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC),
	}
	fmt.Print(carbon.ModelCardBlock(total, "fine-tuning"))
	// Output:
	// co2_eq_emissions:
	//   emissions: 12.3
	//   source: "loraflow carbon 0.1.0 (cpu=default-4w-per-thread gpu=none (no GPU library: no GPU term) ram=ram-estimate; intensity 56 gCO2e/kWh, country FRA, OWID 2023 average; PUE 1)"
	//   training_type: "fine-tuning"
	//   geographical_location: "France"
	//   hardware_used: "2 x AMD EPYC (CPU threads)"
}
