package carbon

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// codeCarbonHeader is CodeCarbon 3.1+'s emissions.csv header line: the
// fields of EmissionsData in codecarbon/output_methods/emissions_data.py, in
// declaration order (pandas writes a DataFrame of its values in that order,
// codecarbon/output_methods/file.py FileOutput.out).
const codeCarbonHeader = "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate," +
	"cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed," +
	"country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version," +
	"cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode," +
	"cpu_utilization_percent,gpu_utilization_percent,ram_utilization_percent,ram_used_gb,on_cloud,pue,wue"

// codeCarbonV2Header is CodeCarbon 2.x-3.0's emissions.csv header line, verbatim.
const codeCarbonV2Header = "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate," +
	"cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed," +
	"country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version," +
	"cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,on_cloud,pue"

// designColumns are the CodeCarbon emissions.csv columns that
// docs/architecture.md (Carbon estimates) lists as the output.
var designColumns = []string{"timestamp", "project_name", "run_id", "duration", "emissions", "cpu_power", "gpu_power",
	"ram_power", "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed", "country_iso_code", "region",
	"cloud_provider", "cloud_region", "cpu_model", "gpu_model", "pue", "tracking_mode"}

func sampleReport() Report {
	r := Report{
		Activity: "TrainLoRA", Start: time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 28, 3, 10, 0, 0, time.UTC),
		DurationS: 600, CPUPowerW: 8, RAMPowerW: 0.5, CPUEnergyKWh: 8 * 600 / 3.6e6, RAMEnergyKWh: 0.5 * 600 / 3.6e6,
		PUE: 1.2, IntensityGPerKWh: 56, IntensitySource: "country FRA, OWID 2023 average", CountryISO: "FRA", CountryName: "France",
		CPUMethod: MethodTDPUtilisation, GPUMethod: MethodNoGPULibrary, RAMMethod: MethodRAMEstimate,
		CPUModel: "AMD EPYC 7742 64-Core Processor", CPUThreads: 2, RAMTotalGiB: 8, TrackingMode: "process",
		CPUSeconds: 1000, RAMUsedGiB: 1.342, RAMPeakGiB: 2,
	}
	r.finish()
	return r
}

func TestCSVHeaderExactlyCodeCarbon(t *testing.T) {
	if got := strings.Join(CSVColumns, ","); got != codeCarbonHeader {
		t.Fatalf("header\n got %s\nwant %s", got, codeCarbonHeader)
	}
	idx := map[string]int{}
	for i, c := range CSVColumns {
		idx[c] = i
	}
	last := -1
	for _, c := range designColumns {
		i, ok := idx[c]
		if !ok {
			t.Errorf("documented column %q missing", c)
		}
		// The documented list has pue before tracking_mode; CodeCarbon's order wins for those two.
		if ok && c != "tracking_mode" && c != "pue" && i < last {
			t.Errorf("column %q out of CodeCarbon order", c)
		}
		if ok && c != "tracking_mode" && c != "pue" {
			last = i
		}
	}
}

func TestCSVRowValuesAndUnits(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	if err := WriteCSV(&buf, true, RunInfo{RunID: "wf-1/run-9"}, r); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || len(recs[1]) != len(CSVColumns) {
		t.Fatalf("records %d, fields %d", len(recs), len(recs[1]))
	}
	row := map[string]string{}
	for i, c := range recs[0] {
		row[c] = recs[1][i]
	}
	num := func(c string) float64 {
		v, err := strconv.ParseFloat(row[c], 64)
		if err != nil {
			t.Fatalf("column %s = %q: %v", c, row[c], err)
		}
		return v
	}
	// 8.5 W × 600 s = 5100 J = 1.41667e-3 kWh; × 1.2 = 1.7e-3 kWh; × 56 g = 0.0952 g = 9.52e-5 kg.
	assertNear(t, "duration [s]", num("duration"), 600)
	assertNear(t, "cpu_power [W]", num("cpu_power"), 8)
	// Component energies include PUE, as CodeCarbon's do, and add up to energy_consumed.
	assertNear(t, "ram_energy [kWh]", num("ram_energy"), 300/3.6e6*1.2)
	assertNear(t, "cpu_energy [kWh]", num("cpu_energy"), 4800/3.6e6*1.2)
	assertNear(t, "sum of energies", num("cpu_energy")+num("gpu_energy")+num("ram_energy"), num("energy_consumed"))
	assertNear(t, "energy_consumed [kWh]", num("energy_consumed"), 1.7e-3)
	assertNear(t, "emissions [kg]", num("emissions"), 9.52e-5)
	assertNear(t, "pue", num("pue"), 1.2)
	// 1000 CPU-seconds over 600 s on 2 threads; 1.342 of 8 GB resident.
	assertNear(t, "cpu_utilization_percent", num("cpu_utilization_percent"), 100*1000/1200.0)
	assertNear(t, "ram_utilization_percent", num("ram_utilization_percent"), 100*1.342/8)
	assertNear(t, "ram_used_gb", num("ram_used_gb"), 1.342)
	for c, want := range map[string]string{"timestamp": "2026-11-28T03:10:00", "project_name": "loraflow", "run_id": "wf-1/run-9",
		"experiment_id": "TrainLoRA", "country_iso_code": "FRA", "country_name": "France", "tracking_mode": "process", "on_cloud": "N",
		"cpu_model": "AMD EPYC 7742 64-Core Processor", "cpu_count": "2", "gpu_count": "0"} {
		if row[c] != want {
			t.Errorf("%s = %q, want %q", c, row[c], want)
		}
	}
}

func TestAppendCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "emissions.csv")
	r := sampleReport()
	for i := 0; i < 2; i++ {
		if err := AppendCSV(path, RunInfo{RunID: "r"}, r); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || lines[0] != codeCarbonHeader {
		t.Fatalf("file:\n%s", b)
	}
	// Concurrent appends to a new file write one header.
	conc := filepath.Join(t.TempDir(), "emissions.csv")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); AppendCSV(conc, RunInfo{RunID: "r"}, r) }()
	}
	wg.Wait()
	b, _ = os.ReadFile(conc)
	if n := strings.Count(string(b), "timestamp,"); n != 1 || strings.Count(string(b), "\n") != 9 {
		t.Errorf("concurrent appends: %d headers, %d lines", n, strings.Count(string(b), "\n"))
	}
	bad := filepath.Join(t.TempDir(), "other.csv")
	os.WriteFile(bad, []byte("a,b\n1,2\n"), 0o644)
	if err := AppendCSV(bad, RunInfo{}, r); err == nil {
		t.Error("appending to a foreign CSV succeeded")
	}
}

// Appending to files that CodeCarbon 2.x and 3.1+ wrote keeps each file's
// own layout: every record has the header's column count and puts each value
// under its own column name, whatever the header's order.
func TestAppendCSVToCodeCarbonFiles(t *testing.T) {
	r := sampleReport()
	permuted := strings.Split(codeCarbonHeader, ",")
	slices.Reverse(permuted)
	for name, header := range map[string]string{
		"codecarbon 2.x": codeCarbonV2Header, "codecarbon 3.1": codeCarbonHeader, "reordered": strings.Join(permuted, ","),
	} {
		path := filepath.Join(t.TempDir(), "emissions.csv")
		cols := strings.Split(header, ",")
		theirs := make([]string, len(cols)) // a row CodeCarbon wrote
		for i := range theirs {
			theirs[i] = "x"
		}
		os.WriteFile(path, []byte(header+"\n"+strings.Join(theirs, ",")+"\n"), 0o644)
		if err := AppendCSV(path, RunInfo{RunID: "r"}, r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f, _ := os.Open(path)
		recs, err := csv.NewReader(f).ReadAll() // fails on a record of another length
		f.Close()
		if err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != header {
			t.Fatalf("%s: %d records, %v", name, len(recs), err)
		}
		row := map[string]string{}
		for i, c := range recs[0] {
			row[c] = recs[2][i]
		}
		for c, want := range map[string]string{"run_id": "r", "country_iso_code": "FRA", "country_name": "France", "duration": "600", "pue": "1.2"} {
			if row[c] != want {
				t.Errorf("%s: %s = %q, want %q", name, c, row[c], want)
			}
		}
		if _, ok := row["water_consumed"]; ok && row["water_consumed"] != "0" {
			t.Errorf("%s: water_consumed = %q, want 0 (no WUE)", name, row["water_consumed"])
		}
	}
}

func TestTotals(t *testing.T) {
	a := sampleReport()
	b := sampleReport()
	b.Activity, b.DurationS = "Evaluate", 200
	b.CPUEnergyKWh, b.RAMEnergyKWh, b.GPUEnergyKWh = 1e-3, 0, 2e-3
	b.PUE, b.IntensityGPerKWh, b.CPUMethod, b.GPUMethod = 1.0, 381, MethodRAPL, MethodNVML
	b.finish()
	tot := Totals(a, b)
	assertNear(t, "duration", tot.DurationS, 800)
	assertNear(t, "energy", tot.EnergyKWh, a.EnergyKWh+b.EnergyKWh)
	assertNear(t, "emissions", tot.EmissionsKg, a.EmissionsKg+b.EmissionsKg)
	assertNear(t, "intensity", tot.IntensityGPerKWh, (a.EmissionsKg+b.EmissionsKg)*1000/(a.EnergyKWh+b.EnergyKWh))
	assertNear(t, "cpu power", tot.CPUPowerW, (a.CPUEnergyKWh+b.CPUEnergyKWh)*3.6e6/800)
	assertNear(t, "pue", tot.PUE, (a.EnergyKWh+b.EnergyKWh)/(a.CPUEnergyKWh+a.RAMEnergyKWh+b.CPUEnergyKWh+b.GPUEnergyKWh))
	if tot.CPUMethod != "tdp-utilisation+rapl" || tot.Activity != "total" {
		t.Errorf("cpu method %q activity %q", tot.CPUMethod, tot.Activity)
	}
	if z := Totals(); z.EnergyKWh != 0 || z.Activity != "total" {
		t.Errorf("empty totals %+v", z)
	}
}

func TestJSONSummaryAndTags(t *testing.T) {
	r := sampleReport()
	cf, err := FullFineTuneCounterfactual(LlamaShape(LlamaDims{Vocab: 10, Hidden: 4, Layers: 1, Heads: 2, KVHeads: 1, Intermediate: 6, SeqLen: 3}).WithLoRA(2, "q_proj"),
		LoRARun{Tokens: 30, Seconds: 1, EnergyKWh: r.EnergyKWh, EmissionsKg: r.EmissionsKg})
	if err != nil {
		t.Fatal(err)
	}
	b, err := JSONSummary([]Report{r}, &cf)
	if err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Total.EmissionsKg != r.EmissionsKg || len(back.Activities) != 1 || back.Counterfactual == nil || back.Counterfactual.FullFLOPs != cf.FullFLOPs {
		t.Errorf("round trip: %s", b)
	}
	tags := back.Tags()
	if tags["carbon.method"] != "cpu=tdp-utilisation gpu=none (no GPU library: no GPU term) ram=ram-estimate" || tags["carbon.full_ft_energy_ratio"] == "" {
		t.Errorf("tags %v", tags)
	}
}

func TestModelCardBlock(t *testing.T) {
	r := sampleReport()
	got := ModelCardBlock(r, "")
	// 9.52e-5 kg = 0.0952 g.
	for _, want := range []string{
		"co2_eq_emissions:\n  emissions: 0.0952\n",
		`  training_type: "fine-tuning"`,
		`  geographical_location: "France"`,
		`  hardware_used: "2 x AMD EPYC 7742 64-Core Processor (CPU threads)"`,
		`  source: "loraflow carbon 0.1.0 (cpu=tdp-utilisation`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("block lacks %q:\n%s", want, got)
		}
	}
	r.CloudProvider, r.CloudRegion, r.GPUCount, r.GPUModel = "aws", "eu-west-3", 1, "NVIDIA H100"
	c := NewModelCard(r, "pre-training")
	if c.GeographicalLocation != "aws eu-west-3 (France)" || !strings.HasPrefix(c.HardwareUsed, "1 x NVIDIA H100 (GPU)") || c.TrainingType != "pre-training" {
		t.Errorf("card %+v", c)
	}
}
