package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/carbon"
)

// A trainer that was killed and restarted (resuming from its checkpoints)
// reports the energy of every run: Measure adds its own to what the file
// holds from the earlier runs, and leaves the new total there.
func TestMeasureSumsEveryRunOfTheStep(t *testing.T) {
	file := filepath.Join(t.TempDir(), "checkpoints", "energy.json")
	earlier := carbon.Report{Activity: "TrainLoRA", DurationS: 100, EnergyKWh: 1, CPUEnergyKWh: 1, EmissionsKg: 0.4, PUE: 1}
	b, _ := json.Marshal(earlier)
	os.MkdirAll(filepath.Dir(file), 0o755)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ran := false
	total, err := Measure(context.Background(), carbon.Options{CountryISO: "FRA"}, "TrainLoRA", file, func() error { ran = true; return nil })
	if err != nil || !ran {
		t.Fatalf("ran %v, err %v", ran, err)
	}
	if total.Activity != "TrainLoRA" || total.EnergyKWh <= earlier.EnergyKWh || total.DurationS <= earlier.DurationS || total.EmissionsKg <= earlier.EmissionsKg {
		t.Fatalf("total %+v does not add this run to the earlier %+v", total, earlier)
	}
	var saved carbon.Report
	b, err = os.ReadFile(file)
	if err != nil || json.Unmarshal(b, &saved) != nil || saved.EnergyKWh != total.EnergyKWh {
		t.Fatalf("saved %+v (%v), want the total %+v", saved, err, total)
	}
	// Without a file a run reports only itself.
	alone, err := Measure(context.Background(), carbon.Options{CountryISO: "FRA"}, "TrainLoRA", "", func() error { return nil })
	if err != nil || alone.EnergyKWh >= earlier.EnergyKWh || alone.Activity != "TrainLoRA" {
		t.Fatalf("a run without a file: %+v %v", alone, err)
	}
}
