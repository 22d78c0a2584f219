package carbon

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/csv"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed data/intensity.csv data/cloud_regions.csv data/tdp.csv
var dataFS embed.FS

// WorldIntensity is the world-average grid intensity (gCO2e/kWh) used when no
// country or cloud region is known; CodeCarbon uses 475 (docs/architecture.md, Carbon estimates).
const WorldIntensity = 475.0

// Country is one row of data/intensity.csv.
type Country struct {
	ISO       string  // ISO 3166-1 alpha-3, e.g. "FRA"
	Name      string  // e.g. "France"
	Intensity float64 // gCO2e/kWh
	Year      int     // year of the statistic
	Check     string  // "design" (checked against docs/architecture.md, Carbon estimates) or "approx"
}

// CloudRegion is one row of data/cloud_regions.csv.
type CloudRegion struct {
	Provider string // "aws", "gcp", "azure"
	Region   string // e.g. "eu-west-3"
	ISO      string // country whose grid average applies
	Location string // e.g. "Paris"
}

// CPUSpec is one row of data/tdp.csv.
type CPUSpec struct {
	Match   string  // lower-case model tokens matched as whole words
	Name    string  // vendor's name
	TDPW    float64 // thermal design power, W
	Cores   int
	Threads int
}

// WattsPerThread is TDP divided by hardware threads.
func (c CPUSpec) WattsPerThread() float64 { return c.TDPW / float64(c.Threads) }

type tables struct {
	countries map[string]Country
	regions   map[string]CloudRegion // key provider/region
	cpus      []CPUSpec
}

var (
	loadOnce  sync.Once
	loaded    *tables
	loadedErr error
)

func builtinTables() (*tables, error) {
	loadOnce.Do(func() { loaded, loadedErr = loadTables() })
	return loaded, loadedErr
}

func loadTables() (*tables, error) {
	t := &tables{countries: map[string]Country{}, regions: map[string]CloudRegion{}}
	err := readTable("data/intensity.csv", []string{"iso", "name", "gco2e_per_kwh", "year", "check"}, func(rec []string, line int) error {
		v, err := strconv.ParseFloat(rec[2], 64)
		if err != nil || v < 0 {
			return fmt.Errorf("bad intensity %q", rec[2])
		}
		y, err := strconv.Atoi(rec[3])
		if err != nil {
			return fmt.Errorf("bad year %q", rec[3])
		}
		iso := strings.ToUpper(rec[0])
		if _, dup := t.countries[iso]; dup {
			return fmt.Errorf("duplicate country %s", iso)
		}
		t.countries[iso] = Country{ISO: iso, Name: rec[1], Intensity: v, Year: y, Check: rec[4]}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readTable("data/cloud_regions.csv", []string{"provider", "region", "iso", "location"}, func(rec []string, line int) error {
		r := CloudRegion{Provider: normProvider(rec[0]), Region: strings.ToLower(rec[1]), ISO: strings.ToUpper(rec[2]), Location: rec[3]}
		if _, ok := t.countries[r.ISO]; !ok {
			return fmt.Errorf("region %s/%s: country %s not in intensity.csv", r.Provider, r.Region, r.ISO)
		}
		k := r.Provider + "/" + r.Region
		if _, dup := t.regions[k]; dup {
			return fmt.Errorf("duplicate region %s", k)
		}
		t.regions[k] = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readTable("data/tdp.csv", []string{"match", "vendor_name", "tdp_w", "cores", "threads"}, func(rec []string, line int) error {
		tdp, err := strconv.ParseFloat(rec[2], 64)
		if err != nil || tdp <= 0 {
			return fmt.Errorf("bad tdp %q", rec[2])
		}
		cores, err1 := strconv.Atoi(rec[3])
		threads, err2 := strconv.Atoi(rec[4])
		if err1 != nil || err2 != nil || cores <= 0 || threads < cores {
			return fmt.Errorf("bad cores/threads %q/%q", rec[3], rec[4])
		}
		t.cpus = append(t.cpus, CPUSpec{Match: strings.ToLower(rec[0]), Name: rec[1], TDPW: tdp, Cores: cores, Threads: threads})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Longest match first, so "xeon gold 6226r" wins over a shorter key.
	sort.SliceStable(t.cpus, func(i, j int) bool { return len(t.cpus[i].Match) > len(t.cpus[j].Match) })
	return t, nil
}

// readTable reads an embedded CSV whose leading lines starting with '#' are
// comments and whose first other line is the header.
func readTable(name string, header []string, row func(rec []string, line int) error) error {
	raw, err := dataFS.ReadFile(name)
	if err != nil {
		return fmt.Errorf("carbon: %s: %w", name, err)
	}
	var body bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw))
	skipped := 0
	for sc.Scan() {
		if body.Len() == 0 && strings.HasPrefix(sc.Text(), "#") {
			skipped++
			continue
		}
		body.Write(sc.Bytes())
		body.WriteByte('\n')
	}
	r := csv.NewReader(&body)
	r.FieldsPerRecord = len(header)
	got, err := r.Read()
	if err != nil {
		return fmt.Errorf("carbon: %s: header: %w", name, err)
	}
	if strings.Join(got, ",") != strings.Join(header, ",") {
		return fmt.Errorf("carbon: %s: header %v, want %v", name, got, header)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("carbon: %s: %w", name, err)
		}
		line, _ := r.FieldPos(0)
		if err := row(rec, line+skipped); err != nil {
			return fmt.Errorf("carbon: %s line %d: %w", name, line+skipped, err)
		}
	}
}

func normProvider(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	switch p {
	case "google", "gcloud", "google-cloud", "googlecloud":
		return "gcp"
	case "amazon", "amazon-web-services":
		return "aws"
	case "microsoft", "azure-cloud":
		return "azure"
	}
	return p
}

// Countries lists the embedded country intensities, sorted by ISO code.
func Countries() []Country {
	t, err := builtinTables()
	if err != nil {
		return nil
	}
	out := make([]Country, 0, len(t.countries))
	for _, c := range t.countries {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ISO < out[j].ISO })
	return out
}

// LookupCountry returns the intensity row for an ISO 3166-1 alpha-3 code.
func LookupCountry(iso string) (Country, bool) {
	t, err := builtinTables()
	if err != nil {
		return Country{}, false
	}
	c, ok := t.countries[strings.ToUpper(strings.TrimSpace(iso))]
	return c, ok
}

// LookupCloudRegion returns the table row for a provider ("aws", "gcp" or
// "google", "azure") and region name.
func LookupCloudRegion(provider, region string) (CloudRegion, bool) {
	t, err := builtinTables()
	if err != nil {
		return CloudRegion{}, false
	}
	r, ok := t.regions[normProvider(provider)+"/"+strings.ToLower(strings.TrimSpace(region))]
	return r, ok
}

var (
	trademarkRE = regexp.MustCompile(`(?i)\((r|tm|c)\)`)
	spaceRE     = regexp.MustCompile(`\s+`)
)

// normaliseCPUName lower-cases a /proc/cpuinfo model name and removes
// trademark marks and repeated spaces.
func normaliseCPUName(model string) string {
	s := trademarkRE.ReplaceAllString(model, " ")
	s = strings.ReplaceAll(s, "CPU @", " @")
	return strings.TrimSpace(spaceRE.ReplaceAllString(strings.ToLower(s), " "))
}

// LookupCPU finds the TDP row for a /proc/cpuinfo model name such as
// "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz" or "AMD EPYC 7742 64-Core
// Processor". The longest key that occurs as whole words wins.
func LookupCPU(model string) (CPUSpec, bool) {
	t, err := builtinTables()
	if err != nil {
		return CPUSpec{}, false
	}
	name := " " + normaliseCPUName(model) + " "
	for _, c := range t.cpus {
		i := strings.Index(name, " "+c.Match)
		if i < 0 {
			continue
		}
		end := i + 1 + len(c.Match)
		if end < len(name) && !isWordBreak(name[end]) {
			continue
		}
		return c, true
	}
	return CPUSpec{}, false
}

func isWordBreak(b byte) bool {
	return b == ' ' || b == '-' || b == ',' || b == '@'
}
