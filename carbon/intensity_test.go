package carbon

import (
	"strings"
	"testing"
)

func TestResolveIntensityPrecedence(t *testing.T) {
	cases := []struct {
		name   string
		opts   Options
		want   float64
		iso    string
		source string // substring
	}{
		{"world", Options{}, 475, "", "world average"},
		{"country", Options{CountryISO: "fra"}, 56, "FRA", "country FRA"},
		{"cloud wins over country", Options{CountryISO: "IND", CloudProvider: "aws", CloudRegion: "eu-north-1"}, 41, "SWE", "cloud region aws/eu-north-1"},
		{"gcp alias", Options{CloudProvider: "google", CloudRegion: "europe-west9"}, 56, "FRA", "gcp/europe-west9"},
		{"azure", Options{CloudProvider: "azure", CloudRegion: "uksouth"}, 238, "GBR", "azure/uksouth"},
		{"unknown region falls to country", Options{CountryISO: "DEU", CloudProvider: "aws", CloudRegion: "mars-1"}, 381, "DEU", "not in table"},
		{"unknown country falls to world", Options{CountryISO: "XYZ"}, 475, "XYZ", "XYZ not in table"},
		{"override wins", Options{CountryISO: "CHN", CloudProvider: "aws", CloudRegion: "us-east-1", IntensityOverride: 12.5}, 12.5, "USA", "override"},
	}
	for _, c := range cases {
		in, err := ResolveIntensity(c.opts)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if in.GramsPerKWh != c.want || in.CountryISO != c.iso || !strings.Contains(in.Source, c.source) {
			t.Errorf("%s: got %+v, want %g g/kWh, iso %q, source ~%q", c.name, in, c.want, c.iso, c.source)
		}
	}
}

// TestDesignFigures pins the grid intensities that docs/architecture.md
// (Carbon estimates) quotes from Our World in Data and that intensity.csv
// marks "design": WLD 475, USA 370, FRA 56, DEU 381, GBR 238, SWE 41,
// IND 713, CHN 582 gCO2e/kWh.
func TestDesignFigures(t *testing.T) {
	for iso, want := range map[string]float64{"WLD": 475, "USA": 370, "FRA": 56, "DEU": 381, "GBR": 238, "SWE": 41, "IND": 713, "CHN": 582} {
		c, ok := LookupCountry(iso)
		if !ok || c.Intensity != want || c.Check != "design" {
			t.Errorf("%s = %+v, want %g (design)", iso, c, want)
		}
	}
	if len(Countries()) < 30 {
		t.Errorf("only %d countries", len(Countries()))
	}
	// Every region's country is in the intensity table (loadTables checks it too).
	for _, p := range []string{"aws", "gcp", "azure"} {
		n := 0
		tb, _ := builtinTables()
		for _, r := range tb.regions {
			if r.Provider == p {
				n++
			}
		}
		if n < 20 {
			t.Errorf("%s: %d regions", p, n)
		}
	}
}

func TestIntensityPUEArithmetic(t *testing.T) {
	r := Report{CPUEnergyKWh: 1, GPUEnergyKWh: 0.25, RAMEnergyKWh: 0.5, PUE: 1.2, IntensityGPerKWh: 56, DurationS: 3600}
	r.finish()
	// (1 + 0.25 + 0.5) kWh × 1.2 = 2.1 kWh; × 56 g/kWh = 117.6 g = 0.1176 kg; per second over 3600 s.
	assertNear(t, "EnergyKWh", r.EnergyKWh, 2.1)
	assertNear(t, "EmissionsKg", r.EmissionsKg, 0.1176)
	assertNear(t, "EmissionsRate", r.EmissionsRateKgPerS, 0.1176/3600)

	m, err := NewMeter(Options{SysfsRoot: t.TempDir(), ProcRoot: t.TempDir(), PUE: 1.67, CloudProvider: "gcp", CloudRegion: "asia-south1"})
	if err != nil {
		t.Fatal(err)
	}
	if m.PUE() != 1.67 || m.Intensity().GramsPerKWh != 713 {
		t.Errorf("PUE %g intensity %+v", m.PUE(), m.Intensity())
	}
	def, _ := NewMeter(Options{SysfsRoot: t.TempDir(), ProcRoot: t.TempDir()})
	if def.PUE() != 1.0 {
		t.Errorf("default PUE %g", def.PUE())
	}
}

func TestRegionFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	cases := []struct {
		vars       map[string]string
		prov, regn string
	}{
		{map[string]string{}, "", ""},
		{map[string]string{"AWS_DEFAULT_REGION": "eu-west-3"}, "aws", "eu-west-3"},
		{map[string]string{"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-3"}, "aws", "us-west-2"},
		{map[string]string{"GOOGLE_CLOUD_REGION": "europe-west4"}, "gcp", "europe-west4"},
		{map[string]string{"AZURE_LOCATION": "westeurope"}, "azure", "westeurope"},
		{map[string]string{"LORAFLOW_CLOUD_PROVIDER": "Google", "LORAFLOW_CLOUD_REGION": "us-central1", "AWS_REGION": "x"}, "gcp", "us-central1"},
	}
	for _, c := range cases {
		p, r := RegionFromEnv(env(c.vars))
		if p != c.prov || r != c.regn {
			t.Errorf("%v: got %s/%s, want %s/%s", c.vars, p, r, c.prov, c.regn)
		}
	}
}
