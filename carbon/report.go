package carbon

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Report is what one measured activity (or a Totals sum) consumed. Powers are
// device averages in W (without PUE); component energies are device energies
// in kWh (without PUE); EnergyKWh is their sum × PUE; EmissionsKg is EnergyKWh
// × intensity. Each term names the method that produced it.
type Report struct {
	Activity  string    `json:"activity"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	DurationS float64   `json:"duration_s"`

	CPUPowerW    float64 `json:"cpu_power_w"`
	GPUPowerW    float64 `json:"gpu_power_w"`
	RAMPowerW    float64 `json:"ram_power_w"`
	CPUEnergyKWh float64 `json:"cpu_energy_kwh"`
	GPUEnergyKWh float64 `json:"gpu_energy_kwh"`
	RAMEnergyKWh float64 `json:"ram_energy_kwh"`
	EnergyKWh    float64 `json:"energy_kwh"`

	EmissionsKg         float64 `json:"emissions_kg"`
	EmissionsRateKgPerS float64 `json:"emissions_rate_kg_per_s"`
	IntensityGPerKWh    float64 `json:"intensity_g_per_kwh"`
	IntensitySource     string  `json:"intensity_source"`
	PUE                 float64 `json:"pue"`

	CPUMethod string `json:"cpu_method"`
	GPUMethod string `json:"gpu_method"`
	RAMMethod string `json:"ram_method"`

	CPUSeconds        float64 `json:"cpu_seconds"`                    // process user+system CPU time
	CPUUtilisation    float64 `json:"cpu_utilisation"`                // CPUSeconds / (duration × threads)
	CPUWattsPerThread float64 `json:"cpu_watts_per_thread,omitempty"` // estimate methods only
	RAMUsedGiB        float64 `json:"ram_used_gib"`                   // time-averaged resident memory
	RAMPeakGiB        float64 `json:"ram_peak_gib"`
	RAMTotalGiB       float64 `json:"ram_total_gib"`

	CPUModel      string   `json:"cpu_model"`
	CPUThreads    int      `json:"cpu_count"`
	GPUModel      string   `json:"gpu_model,omitempty"`
	GPUCount      int      `json:"gpu_count"`
	CountryISO    string   `json:"country_iso_code,omitempty"`
	CountryName   string   `json:"country_name,omitempty"`
	Region        string   `json:"region,omitempty"`
	CloudProvider string   `json:"cloud_provider,omitempty"`
	CloudRegion   string   `json:"cloud_region,omitempty"`
	TrackingMode  string   `json:"tracking_mode"` // "machine" (RAPL) or "process" (estimates)
	Samples       int      `json:"samples"`
	Notes         []string `json:"notes,omitempty"`
}

// Method summarises the methods of the non-zero terms, e.g.
// "cpu=rapl gpu=none ram=ram-estimate".
func (r Report) Method() string {
	return fmt.Sprintf("cpu=%s gpu=%s ram=%s", r.CPUMethod, r.GPUMethod, r.RAMMethod)
}

// Totals sums reports into one, named "total": durations, energies and
// emissions add up; powers are total energy over total duration; the
// intensity is emissions over energy; methods and models that differ are
// joined with "+". PUE is the energy-weighted mean.
func Totals(reports ...Report) Report {
	t := Report{Activity: "total"}
	if len(reports) == 0 {
		return t
	}
	var deviceKWh float64
	var cpuJ, gpuJ, ramJ float64
	var ramGiBs float64
	for i, r := range reports {
		if i == 0 || r.Start.Before(t.Start) {
			t.Start = r.Start
		}
		if r.End.After(t.End) {
			t.End = r.End
		}
		t.DurationS += r.DurationS
		t.CPUEnergyKWh += r.CPUEnergyKWh
		t.GPUEnergyKWh += r.GPUEnergyKWh
		t.RAMEnergyKWh += r.RAMEnergyKWh
		t.EnergyKWh += r.EnergyKWh
		t.EmissionsKg += r.EmissionsKg
		t.CPUSeconds += r.CPUSeconds
		t.Samples += r.Samples
		cpuJ += r.CPUEnergyKWh * 3.6e6
		gpuJ += r.GPUEnergyKWh * 3.6e6
		ramJ += r.RAMEnergyKWh * 3.6e6
		deviceKWh += r.CPUEnergyKWh + r.GPUEnergyKWh + r.RAMEnergyKWh
		ramGiBs += r.RAMUsedGiB * r.DurationS
		t.RAMPeakGiB = max(t.RAMPeakGiB, r.RAMPeakGiB)
		t.RAMTotalGiB = max(t.RAMTotalGiB, r.RAMTotalGiB)
		t.CPUThreads = max(t.CPUThreads, r.CPUThreads)
		t.GPUCount = max(t.GPUCount, r.GPUCount)
		t.CPUMethod = joinDistinct(t.CPUMethod, r.CPUMethod)
		t.GPUMethod = joinDistinct(t.GPUMethod, r.GPUMethod)
		t.RAMMethod = joinDistinct(t.RAMMethod, r.RAMMethod)
		t.IntensitySource = joinDistinct(t.IntensitySource, r.IntensitySource)
		t.CPUModel = joinDistinct(t.CPUModel, r.CPUModel)
		t.GPUModel = joinDistinct(t.GPUModel, r.GPUModel)
		t.CountryISO = joinDistinct(t.CountryISO, r.CountryISO)
		t.CountryName = joinDistinct(t.CountryName, r.CountryName)
		t.Region = joinDistinct(t.Region, r.Region)
		t.CloudProvider = joinDistinct(t.CloudProvider, r.CloudProvider)
		t.CloudRegion = joinDistinct(t.CloudRegion, r.CloudRegion)
		t.TrackingMode = joinDistinct(t.TrackingMode, r.TrackingMode)
		for _, n := range r.Notes {
			t.Notes = appendOnce(t.Notes, n)
		}
	}
	if t.DurationS > 0 {
		t.CPUPowerW = cpuJ / t.DurationS
		t.GPUPowerW = gpuJ / t.DurationS
		t.RAMPowerW = ramJ / t.DurationS
		t.RAMUsedGiB = ramGiBs / t.DurationS
		t.EmissionsRateKgPerS = t.EmissionsKg / t.DurationS
		if t.CPUThreads > 0 {
			t.CPUUtilisation = t.CPUSeconds / (t.DurationS * float64(t.CPUThreads))
		}
	}
	if deviceKWh > 0 {
		t.PUE = t.EnergyKWh / deviceKWh
	} else {
		t.PUE = reports[0].PUE
	}
	if t.EnergyKWh > 0 {
		t.IntensityGPerKWh = t.EmissionsKg * 1000 / t.EnergyKWh
	} else {
		t.IntensityGPerKWh = reports[0].IntensityGPerKWh
	}
	return t
}

func joinDistinct(acc, v string) string {
	if v == "" {
		return acc
	}
	if acc == "" {
		return v
	}
	for _, p := range strings.Split(acc, "+") {
		if p == v {
			return acc
		}
	}
	return acc + "+" + v
}

// RunInfo names the run a CSV row belongs to.
type RunInfo struct {
	ProjectName  string    // CSV project_name; "loraflow" when empty
	RunID        string    // CSV run_id, e.g. the Temporal workflow run ID
	ExperimentID string    // CSV experiment_id; the report's activity name when empty
	Timestamp    time.Time // CSV timestamp; the report's End when zero
	OnCloud      bool      // CSV on_cloud ("Y"/"N"); also "Y" when the report has a cloud provider
}

// CSVColumns is CodeCarbon's current emissions.csv header, the field order
// of EmissionsData in codecarbon/output_methods/emissions_data.py (v3.1 and
// later, which added water_consumed, the three utilization columns,
// ram_used_gb and wue to the 2.x layout). Units: duration s, emissions kg
// CO2e, emissions_rate kg/s, powers W, energies kWh, water L, utilizations
// %, ram_total_size and ram_used_gb GB. New files get this header.
var CSVColumns = []string{
	"timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions", "emissions_rate",
	"cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed",
	"water_consumed",
	"country_name", "country_iso_code", "region", "cloud_provider", "cloud_region",
	"os", "python_version", "codecarbon_version", "cpu_count", "cpu_model", "gpu_count", "gpu_model",
	"longitude", "latitude", "ram_total_size", "tracking_mode",
	"cpu_utilization_percent", "gpu_utilization_percent", "ram_utilization_percent", "ram_used_gb",
	"on_cloud", "pue", "wue",
}

// CSVColumnsV2 is the header CodeCarbon 2.x to 3.0 writes; AppendCSV keeps
// appending to such files in their own layout.
var CSVColumnsV2 = []string{
	"timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions", "emissions_rate",
	"cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed",
	"country_name", "country_iso_code", "region", "cloud_provider", "cloud_region",
	"os", "python_version", "codecarbon_version", "cpu_count", "cpu_model", "gpu_count", "gpu_model",
	"longitude", "latitude", "ram_total_size", "tracking_mode", "on_cloud", "pue",
}

// CSVRecord returns the report as one emissions.csv record in CSVColumns
// order. Timestamps are UTC in CodeCarbon's "2006-01-02T15:04:05" form;
// python_version is empty and codecarbon_version names this package. As in
// CodeCarbon, cpu_energy, gpu_energy and ram_energy include PUE (so they add up
// to energy_consumed) while the power columns are device power. loraflow
// estimates no water: water_consumed and wue are 0, CodeCarbon's values when
// no WUE is configured (EmissionsData's default wue = 0).
func CSVRecord(r Report, run RunInfo) []string {
	return csvRecord(CSVColumns, r, run)
}

// csvRecord is the report's record for a header with the given columns.
func csvRecord(columns []string, r Report, run RunInfo) []string {
	v := csvValues(r, run)
	rec := make([]string, len(columns))
	for i, c := range columns {
		rec[i] = v[c]
	}
	return rec
}

// csvValues maps every CSVColumns name to the report's value.
func csvValues(r Report, run RunInfo) map[string]string {
	ts := run.Timestamp
	if ts.IsZero() {
		ts = r.End
	}
	project := run.ProjectName
	if project == "" {
		project = "loraflow"
	}
	exp := run.ExperimentID
	if exp == "" {
		exp = r.Activity
	}
	onCloud := "N"
	if run.OnCloud || r.CloudProvider != "" {
		onCloud = "Y"
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	// The process's share of the machine's threads, and of its memory.
	var cpuUtil, ramUtil float64
	if r.DurationS > 0 && r.CPUThreads > 0 {
		cpuUtil = 100 * r.CPUSeconds / (r.DurationS * float64(r.CPUThreads))
	}
	if r.RAMTotalGiB > 0 {
		ramUtil = 100 * r.RAMUsedGiB / r.RAMTotalGiB
	}
	return map[string]string{
		"timestamp": ts.UTC().Format("2006-01-02T15:04:05"), "project_name": project, "run_id": run.RunID, "experiment_id": exp,
		"duration": f(r.DurationS), "emissions": f(r.EmissionsKg), "emissions_rate": f(r.EmissionsRateKgPerS),
		"cpu_power": f(r.CPUPowerW), "gpu_power": f(r.GPUPowerW), "ram_power": f(r.RAMPowerW),
		"cpu_energy": f(r.CPUEnergyKWh * r.PUE), "gpu_energy": f(r.GPUEnergyKWh * r.PUE), "ram_energy": f(r.RAMEnergyKWh * r.PUE),
		"energy_consumed": f(r.EnergyKWh), "water_consumed": "0",
		"country_name": r.CountryName, "country_iso_code": r.CountryISO, "region": r.Region,
		"cloud_provider": r.CloudProvider, "cloud_region": r.CloudRegion,
		"os": runtime.GOOS + "-" + runtime.GOARCH, "python_version": "", "codecarbon_version": "loraflow-carbon " + Version,
		"cpu_count": strconv.Itoa(r.CPUThreads), "cpu_model": r.CPUModel, "gpu_count": strconv.Itoa(r.GPUCount), "gpu_model": r.GPUModel,
		"longitude": "", "latitude": "", "ram_total_size": f(r.RAMTotalGiB), "tracking_mode": r.TrackingMode,
		"cpu_utilization_percent": f(cpuUtil), "gpu_utilization_percent": "0", "ram_utilization_percent": f(ramUtil),
		"ram_used_gb": f(r.RAMUsedGiB), "on_cloud": onCloud, "pue": f(r.PUE), "wue": "0",
	}
}

// csvLayout reports whether header is a layout loraflow can append to:
// CodeCarbon's current or 2.x columns, in any order (CodeCarbon's own
// test, FileOutput.has_valid_headers in codecarbon/output_methods/file.py,
// compares sorted(headers) with sorted(EmissionsData fields)).
func csvLayout(header []string) bool {
	got := slices.Sorted(slices.Values(header))
	for _, layout := range [][]string{CSVColumns, CSVColumnsV2} {
		if slices.Equal(got, slices.Sorted(slices.Values(layout))) {
			return true
		}
	}
	return false
}

var appendMu sync.Mutex

// Version is this package's version, written to the codecarbon_version column.
const Version = "0.1.0"

// WriteCSV writes the header (when header is true) and one record per report.
func WriteCSV(w io.Writer, header bool, run RunInfo, reports ...Report) error {
	return writeCSV(w, CSVColumns, header, run, reports...)
}

// writeCSV writes records with the given columns, in their order.
func writeCSV(w io.Writer, columns []string, header bool, run RunInfo, reports ...Report) error {
	cw := csv.NewWriter(w)
	if header {
		if err := cw.Write(columns); err != nil {
			return fmt.Errorf("carbon: csv header: %w", err)
		}
	}
	for _, r := range reports {
		if err := cw.Write(csvRecord(columns, r, run)); err != nil {
			return fmt.Errorf("carbon: csv row for %q: %w", r.Activity, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("carbon: csv: %w", err)
	}
	return nil
}

// WriteCSVRow writes one record (no header).
func WriteCSVRow(w io.Writer, r Report, run RunInfo) error { return WriteCSV(w, false, run, r) }

// AppendCSV appends records to the emissions.csv at path, writing the header
// first when the file is new or empty. An existing file written by
// CodeCarbon 2.x-3.0 or 3.1+ (or by loraflow) gets records in its own
// header's layout and order, so no one's file is moved aside; a file with any
// other header is an error (CodeCarbon would move it aside; here the caller
// decides).
func AppendCSV(path string, run RunInfo, reports ...Report) error {
	appendMu.Lock() // one header even when activities of one worker finish together
	defer appendMu.Unlock()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("carbon: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("carbon: %w", err)
	}
	header, columns := st.Size() == 0, CSVColumns
	if !header {
		got, err := csv.NewReader(io.NewSectionReader(f, 0, st.Size())).Read()
		if err != nil {
			f.Close()
			return fmt.Errorf("carbon: %s: reading header: %w", path, err)
		}
		if !csvLayout(got) {
			f.Close()
			return fmt.Errorf("carbon: %s: header is not CodeCarbon's emissions.csv layout (%d columns, first %q)", path, len(got), got[0])
		}
		columns = got
	}
	werr := writeCSV(f, columns, header, run, reports...)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("carbon: %s: %w", path, werr)
	}
	if cerr != nil {
		return fmt.Errorf("carbon: %s: %w", path, cerr)
	}
	return nil
}

// Summary is the JSON document attached to provenance and registry entries.
type Summary struct {
	Total          Report          `json:"total"`
	Activities     []Report        `json:"activities"`
	Counterfactual *Counterfactual `json:"full_fine_tune_counterfactual,omitempty"`
}

// NewSummary totals the activities and attaches the counterfactual (may be nil).
func NewSummary(activities []Report, cf *Counterfactual) Summary {
	return Summary{Total: Totals(activities...), Activities: activities, Counterfactual: cf}
}

// JSONSummary renders NewSummary(activities, cf) as indented JSON.
func JSONSummary(activities []Report, cf *Counterfactual) ([]byte, error) {
	b, err := json.MarshalIndent(NewSummary(activities, cf), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("carbon: summary: %w", err)
	}
	return b, nil
}

// Tags flattens the summary into string tags for a model registry
// (MLflow tags, registry annotations), keys prefixed "carbon.".
func (s Summary) Tags() map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	t := s.Total
	tags := map[string]string{
		"carbon.energy_kwh":          f(t.EnergyKWh),
		"carbon.emissions_kg":        f(t.EmissionsKg),
		"carbon.duration_s":          f(t.DurationS),
		"carbon.intensity_g_per_kwh": f(t.IntensityGPerKWh),
		"carbon.intensity_source":    t.IntensitySource,
		"carbon.pue":                 f(t.PUE),
		"carbon.method":              t.Method(),
	}
	if c := s.Counterfactual; c != nil {
		tags["carbon.full_ft_energy_kwh"] = f(c.FullEnergyKWh)
		tags["carbon.full_ft_emissions_kg"] = f(c.FullEmissionsKg)
		tags["carbon.full_ft_flops"] = f(c.FullFLOPs)
		tags["carbon.lora_flops"] = f(c.LoRAFLOPs)
		tags["carbon.full_ft_energy_ratio"] = f(c.EnergyRatio)
		tags["carbon.full_ft_optimizer_bytes"] = strconv.FormatInt(c.FullOptimizerBytes, 10)
		tags["carbon.lora_optimizer_bytes"] = strconv.FormatInt(c.LoRAOptimizerBytes, 10)
	}
	return tags
}

// ModelCard holds the Hugging Face model-card co2_eq_emissions fields.
type ModelCard struct {
	EmissionsGrams       float64 `json:"emissions"` // grams CO2e
	Source               string  `json:"source"`
	TrainingType         string  `json:"training_type"`         // "fine-tuning" or "pre-training"
	GeographicalLocation string  `json:"geographical_location"` // e.g. "France"
	HardwareUsed         string  `json:"hardware_used"`         // e.g. "2 x AMD EPYC (CPU)"
}

// NewModelCard fills the model-card fields from a (total) report. trainingType
// defaults to "fine-tuning".
func NewModelCard(total Report, trainingType string) ModelCard {
	if trainingType == "" {
		trainingType = "fine-tuning"
	}
	loc := total.CountryName
	if total.CloudProvider != "" {
		loc = strings.TrimSpace(fmt.Sprintf("%s %s %s", total.CloudProvider, total.CloudRegion, paren(total.CountryName)))
	}
	if loc == "" {
		loc = "unknown (world-average grid intensity)"
	}
	hw := fmt.Sprintf("%d x %s (CPU threads)", total.CPUThreads, total.CPUModel)
	if total.GPUCount > 0 {
		hw = fmt.Sprintf("%d x %s (GPU), %s", total.GPUCount, total.GPUModel, hw)
	}
	return ModelCard{
		EmissionsGrams:       total.EmissionsKg * 1000,
		Source:               fmt.Sprintf("loraflow carbon %s (%s; intensity %g gCO2e/kWh, %s; PUE %g)", Version, total.Method(), round(total.IntensityGPerKWh, 4), total.IntensitySource, round(total.PUE, 4)),
		TrainingType:         trainingType,
		GeographicalLocation: loc,
		HardwareUsed:         hw,
	}
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

func round(v float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', digits, 64), 64)
	return f
}

// ModelCardBlock renders the model-card YAML front-matter block:
//
//	co2_eq_emissions:
//	  emissions: 12.3
//	  source: "..."
//	  training_type: "fine-tuning"
//	  geographical_location: "France"
//	  hardware_used: "..."
func ModelCardBlock(total Report, trainingType string) string {
	c := NewModelCard(total, trainingType)
	var b strings.Builder
	b.WriteString("co2_eq_emissions:\n")
	fmt.Fprintf(&b, "  emissions: %s\n", strconv.FormatFloat(c.EmissionsGrams, 'g', 6, 64))
	for _, kv := range [][2]string{
		{"source", c.Source}, {"training_type", c.TrainingType},
		{"geographical_location", c.GeographicalLocation}, {"hardware_used", c.HardwareUsed},
	} {
		fmt.Fprintf(&b, "  %s: %s\n", kv[0], yamlQuote(kv[1]))
	}
	return b.String()
}

// yamlQuote quotes s as a YAML double-quoted scalar; JSON's string escapes
// are a subset of YAML's.
func yamlQuote(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
