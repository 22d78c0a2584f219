package carbon

import (
	"bytes"
	"encoding/csv"
	"testing"
)

// CodeCarbon fills country_iso_code and country_name for every run
// (codecarbon/output_methods/emissions_data.py, EmissionsData: both are
// columns of every row); loraflow fills them from the region it is given,
// a country ("FRA") or a cloud region ("aws:eu-west-3" → Paris → FRA), with
// the names of carbon/data/intensity.csv.
func TestCountryFieldsFilledFromTheRegion(t *testing.T) {
	for _, c := range []struct {
		name     string
		o        Options
		iso, cty string
	}{
		{"country", Options{CountryISO: "fra"}, "FRA", "France"},
		{"cloud region", Options{CloudProvider: "aws", CloudRegion: "eu-north-1"}, "SWE", "Sweden"},
		{"override keeps the country", Options{CloudProvider: "aws", CloudRegion: "eu-west-3", IntensityOverride: 20}, "FRA", "France"},
	} {
		in, err := ResolveIntensity(c.o)
		if err != nil {
			t.Fatal(err)
		}
		r := Report{CountryISO: in.CountryISO, CountryName: in.CountryName, PUE: 1}
		var buf bytes.Buffer
		if err := WriteCSV(&buf, true, RunInfo{}, r); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("%s: %v %v", c.name, rows, err)
		}
		got := map[string]string{}
		for i, h := range rows[0] {
			got[h] = rows[1][i]
		}
		if got["country_iso_code"] != c.iso || got["country_name"] != c.cty {
			t.Errorf("%s: country_iso_code %q country_name %q, want %q %q", c.name, got["country_iso_code"], got["country_name"], c.iso, c.cty)
		}
	}
}
