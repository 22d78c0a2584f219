package carbon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Method labels recorded in a Report for each number.
const (
	MethodRAPL             = "rapl"                  // CPU package energy counters (powercap)
	MethodRAPLDRAM         = "rapl-dram"             // DRAM energy counters (powercap)
	MethodNVML             = "nvml"                  // GPU energy counter
	MethodNVMLPowerSamples = "nvml-power-samples"    // GPU power sampled and integrated
	MethodTDPUtilisation   = "tdp-utilisation"       // CPU TDP table × this process's CPU time
	MethodDefaultPerThread = "default-4w-per-thread" // unknown CPU model: 4 W per thread × CPU time
	MethodRAMEstimate      = "ram-estimate"          // 0.3725 W per GiB of this process's resident memory
	MethodNone             = "none"                  // not measured; the term is zero
	MethodNoGPULibrary     = "none (no GPU library: no GPU term)"
	MethodNoGPU            = "none (no GPU)"
)

// Estimation constants (docs/architecture.md, Carbon estimates).
const (
	// DefaultWattsPerThread is the CPU power assumed per hardware thread for a
	// CPU model that is not in data/tdp.csv.
	DefaultWattsPerThread = 4.0
	// RAMWattsPerGiB is Green Algorithms' memory power, 0.3725 W per GB of
	// memory in use (Lannelongue, Grealey & Inouye 2021), applied here per GiB
	// (2^30 bytes) of the process's resident set.
	RAMWattsPerGiB = 0.3725
	// DefaultPUE is CodeCarbon's default power usage effectiveness.
	DefaultPUE = 1.0
	// DefaultSampleInterval is how often a Measurement samples in the background.
	DefaultSampleInterval = 2 * time.Second
	// MinSampleInterval bounds the sampler's overhead.
	MinSampleInterval = 100 * time.Millisecond
)

const gib = 1 << 30

// Options configure a Meter. The zero value measures this process with the
// world-average intensity and PUE 1.0.
type Options struct {
	// CountryISO is the ISO 3166-1 alpha-3 code of the grid (e.g. "FRA").
	CountryISO string
	// Region is a free-text sub-national region, carried into the CSV.
	Region string
	// CloudProvider ("aws", "gcp", "azure") and CloudRegion ("eu-west-3")
	// select the grid from data/cloud_regions.csv; they win over CountryISO.
	CloudProvider, CloudRegion string
	// PUE multiplies device energy; 0 means DefaultPUE. Must be >= 1.
	PUE float64
	// IntensityOverride, in gCO2e/kWh, wins over every table when > 0.
	IntensityOverride float64
	// SysfsRoot is where sys/class/powercap is looked up ("/" by default).
	SysfsRoot string
	// ProcRoot is the proc filesystem ("/proc" by default).
	ProcRoot string
	// SampleInterval is the background sampling period (DefaultSampleInterval
	// when 0; never below MinSampleInterval).
	SampleInterval time.Duration
	// GPU, when set, is used for the GPU term (for example an NVML source in
	// a build that has one). When nil the default build has no GPU term.
	GPU GPUSource
	// DisableRAPL forces the TDP estimate even where RAPL is readable.
	DisableRAPL bool

	now func() time.Time // tests
}

// Meter measures energy and emissions of activities. It is safe for
// concurrent use; each Start returns an independent Measurement. Note that
// both RAPL (whole CPU package) and process CPU time (whole process) are
// shared by activities that run at the same time in one worker, so
// overlapping measurements each include the others' consumption.
type Meter struct {
	opts      Options
	interval  time.Duration
	pue       float64
	intensity Intensity

	rapl      *raplReader
	gpu       GPUSource
	gpuMethod string
	gpuModel  string
	gpuCount  int

	cpuModel      string
	cpuThreads    int
	cpuSpec       CPUSpec
	cpuKnown      bool
	ramTotalBytes float64
	procOK        bool

	notes []string
}

// Intensity is the grid carbon intensity a Meter uses and where it came from.
type Intensity struct {
	GramsPerKWh float64 `json:"g_per_kwh"`
	Source      string  `json:"source"` // e.g. "cloud aws/eu-west-3 -> FRA (OWID 2023)", "override", "world average"
	CountryISO  string  `json:"country_iso_code,omitempty"`
	CountryName string  `json:"country_name,omitempty"`
}

// ResolveIntensity chooses the grid intensity: IntensityOverride, else the
// cloud region's country, else CountryISO, else the world average (475). An
// unknown region or country falls through to the next choice and says so in
// Source.
func ResolveIntensity(o Options) (Intensity, error) {
	if o.IntensityOverride < 0 {
		return Intensity{}, fmt.Errorf("carbon: intensity override %g gCO2e/kWh is negative", o.IntensityOverride)
	}
	var skipped []string
	var in Intensity
	iso := strings.ToUpper(strings.TrimSpace(o.CountryISO))
	if o.CloudProvider != "" && o.CloudRegion != "" {
		if r, ok := LookupCloudRegion(o.CloudProvider, o.CloudRegion); ok {
			c, _ := LookupCountry(r.ISO)
			in = Intensity{GramsPerKWh: c.Intensity, CountryISO: c.ISO, CountryName: c.Name,
				Source: fmt.Sprintf("cloud region %s/%s (%s) -> %s, OWID %d average", r.Provider, r.Region, r.Location, c.ISO, c.Year)}
		} else {
			skipped = append(skipped, fmt.Sprintf("cloud region %s/%s not in table", o.CloudProvider, o.CloudRegion))
		}
	}
	if in.Source == "" && iso != "" {
		if c, ok := LookupCountry(iso); ok {
			in = Intensity{GramsPerKWh: c.Intensity, CountryISO: c.ISO, CountryName: c.Name,
				Source: fmt.Sprintf("country %s, OWID %d average", c.ISO, c.Year)}
		} else {
			skipped = append(skipped, fmt.Sprintf("country %s not in table", iso))
		}
	}
	if in.Source == "" {
		in = Intensity{GramsPerKWh: WorldIntensity, Source: "world average", CountryISO: iso}
	}
	if o.IntensityOverride > 0 {
		in.GramsPerKWh = o.IntensityOverride
		in.Source = "override"
		if in.CountryISO == "" {
			in.CountryISO = iso
		}
	} else if len(skipped) > 0 {
		in.Source += " (" + strings.Join(skipped, "; ") + ")"
	}
	return in, nil
}

// NewMeter probes what this machine allows (RAPL, GPU, /proc) and resolves
// PUE and grid intensity. Missing or unreadable sources are not errors: they
// select a fallback method, listed by Notes. Only invalid options are.
func NewMeter(opts Options) (*Meter, error) {
	if opts.SysfsRoot == "" {
		opts.SysfsRoot = "/"
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	m := &Meter{opts: opts, pue: opts.PUE, interval: opts.SampleInterval}
	if m.pue == 0 {
		m.pue = DefaultPUE
	}
	if m.pue < 1 {
		return nil, fmt.Errorf("carbon: PUE %g is below 1 (facility energy cannot be less than IT energy)", m.pue)
	}
	if m.interval == 0 {
		m.interval = DefaultSampleInterval
	}
	if m.interval < MinSampleInterval {
		m.interval = MinSampleInterval
	}
	if _, err := builtinTables(); err != nil {
		return nil, err
	}
	in, err := ResolveIntensity(opts)
	if err != nil {
		return nil, err
	}
	m.intensity = in

	ci, err := readCPUInfo(opts.ProcRoot)
	if err != nil {
		m.note("cpuinfo: %v", err)
	}
	m.cpuModel, m.cpuThreads = ci.Model, ci.Threads
	if m.cpuThreads == 0 {
		m.cpuThreads = runtime.NumCPU()
	}
	if m.cpuModel == "" {
		m.cpuModel = "unknown " + runtime.GOARCH + " CPU"
	}
	m.cpuSpec, m.cpuKnown = LookupCPU(m.cpuModel)
	if t, err := memTotalBytes(opts.ProcRoot); err == nil {
		m.ramTotalBytes = t
	}
	if _, err := procCPUSeconds(opts.ProcRoot); err != nil {
		m.note("%v; CPU term cannot be estimated", err)
	} else {
		m.procOK = true
	}

	if !opts.DisableRAPL {
		if r, err := discoverRAPL(opts.SysfsRoot); err != nil {
			m.note("%v; CPU energy estimated from TDP x utilisation", err)
		} else {
			m.rapl = r
		}
	}

	m.gpu = opts.GPU
	if m.gpu == nil {
		var err error
		if m.gpu, err = openDefaultGPU(); err != nil {
			switch {
			case errors.Is(err, errNoGPULibrary):
				m.gpuMethod = MethodNoGPULibrary
			case errors.Is(err, ErrNoGPU):
				m.gpuMethod = MethodNoGPU
			default: // e.g. libnvidia-ml.so.1 not installed
				m.gpuMethod = MethodNoGPULibrary
				m.note("gpu: %v", err)
			}
		}
	}
	if m.gpu != nil {
		method, model, count := m.gpu.Describe()
		m.gpuMethod, m.gpuModel, m.gpuCount = method, model, count
	}
	return m, nil
}

func (m *Meter) note(format string, args ...any) {
	m.notes = append(m.notes, fmt.Sprintf(format, args...))
}

// Notes lists what NewMeter could not use and what it fell back to.
func (m *Meter) Notes() []string { return append([]string(nil), m.notes...) }

// Intensity returns the grid intensity this Meter applies.
func (m *Meter) Intensity() Intensity { return m.intensity }

// PUE returns the power usage effectiveness this Meter applies.
func (m *Meter) PUE() float64 { return m.pue }

// CPUMethod names the method the CPU term will use on this machine.
func (m *Meter) CPUMethod() string {
	switch {
	case m.rapl != nil:
		return MethodRAPL
	case !m.procOK:
		return MethodNone
	case m.cpuKnown:
		return MethodTDPUtilisation
	default:
		return MethodDefaultPerThread
	}
}

// Close releases the GPU source, if any.
func (m *Meter) Close() error {
	if m.gpu != nil {
		return m.gpu.Close()
	}
	return nil
}

// Measurement is one activity being measured. Stop ends it.
type Measurement struct {
	m        *Meter
	activity string
	start    time.Time

	cancel context.CancelFunc
	done   chan struct{}

	stopOnce sync.Once
	report   Report

	mu      sync.Mutex // guards the fields below, shared with the sampler
	st      samplerState
	stopped bool // report is Stop's
}

type samplerState struct {
	cpuStart float64 // process CPU seconds at start
	cpuOK    bool

	raplOK   bool
	raplPrev raplCounters
	raplPkgJ float64
	raplDRAM float64

	rssLastT   time.Time
	rssLast    float64 // bytes
	rssByteSec float64 // ∫ rss dt (trapezoid), bytes·s
	rssOK      bool
	rssPeak    float64

	gpuOK      bool
	gpuCounter bool
	gpuFirstJ  float64
	gpuLastJ   float64
	gpuLastT   time.Time
	gpuLastW   float64
	gpuPowerJ  float64 // ∫ power dt when there is no counter

	samples int
	notes   []string
}

// Start begins measuring an activity and samples in the background until
// Stop or until ctx is done (after which Stop still reports, from its own
// final reading).
func (m *Meter) Start(ctx context.Context, activity string) *Measurement {
	sctx, cancel := context.WithCancel(ctx)
	meas := &Measurement{m: m, activity: activity, start: m.opts.now(), cancel: cancel, done: make(chan struct{})}
	st := &meas.st
	if m.procOK {
		if v, err := procCPUSeconds(m.opts.ProcRoot); err == nil {
			st.cpuStart, st.cpuOK = v, true
		} else {
			st.notes = append(st.notes, err.Error())
		}
	}
	if m.rapl != nil {
		if c, err := m.rapl.read(); err == nil {
			st.raplPrev, st.raplOK = c, true
		} else {
			st.notes = append(st.notes, fmt.Sprintf("%v; CPU energy estimated from TDP x utilisation", err))
		}
	}
	if v, err := procRSSBytes(m.opts.ProcRoot); err == nil {
		st.rssLast, st.rssLastT, st.rssOK, st.rssPeak = v, meas.start, true, v
	}
	if m.gpu != nil {
		if r, err := m.gpu.Read(); err == nil {
			st.gpuOK = true
			st.gpuCounter = r.EnergyJ >= 0
			st.gpuFirstJ, st.gpuLastJ = r.EnergyJ, r.EnergyJ
			st.gpuLastW, st.gpuLastT = r.PowerW, meas.start
		} else {
			st.notes = append(st.notes, fmt.Sprintf("gpu: %v", err))
		}
	}
	go meas.loop(sctx)
	return meas
}

func (meas *Measurement) loop(ctx context.Context) {
	defer close(meas.done)
	t := time.NewTicker(meas.m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			meas.sample(meas.m.opts.now())
		}
	}
}

// sample takes one reading of every source and accumulates it.
func (meas *Measurement) sample(now time.Time) {
	m := meas.m
	meas.mu.Lock()
	defer meas.mu.Unlock()
	st := &meas.st
	st.samples++
	if st.raplOK {
		if c, err := m.rapl.read(); err == nil {
			p, d := m.rapl.deltaJoules(st.raplPrev, c)
			st.raplPkgJ += p
			st.raplDRAM += d
			st.raplPrev = c
		} else {
			// Keep the previous reading: the next successful read covers the gap
			// (unless the counter wrapped meanwhile).
			st.notes = appendOnce(st.notes, "rapl: "+err.Error())
		}
	}
	if st.rssOK {
		if v, err := procRSSBytes(m.opts.ProcRoot); err == nil {
			dt := now.Sub(st.rssLastT).Seconds()
			if dt > 0 {
				st.rssByteSec += (st.rssLast + v) / 2 * dt
			}
			st.rssLast, st.rssLastT = v, now
			if v > st.rssPeak {
				st.rssPeak = v
			}
		}
	}
	if st.gpuOK {
		if r, err := m.gpu.Read(); err == nil {
			if st.gpuCounter && r.EnergyJ >= 0 {
				st.gpuLastJ = r.EnergyJ
			} else {
				dt := now.Sub(st.gpuLastT).Seconds()
				if dt > 0 {
					st.gpuPowerJ += (st.gpuLastW + r.PowerW) / 2 * dt
				}
				st.gpuLastW, st.gpuLastT = r.PowerW, now
			}
		} else {
			st.notes = appendOnce(st.notes, "gpu: "+err.Error())
		}
	}
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// Read returns the report of the measurement so far, without ending it
// (after Stop: Stop's report). A caller that may be killed before Stop
// saves it, so that what was spent is not lost with the process.
func (meas *Measurement) Read() Report {
	now := meas.m.opts.now()
	meas.mu.Lock()
	stopped := meas.stopped
	meas.mu.Unlock()
	if stopped {
		return meas.report
	}
	meas.sample(now)
	meas.mu.Lock()
	defer meas.mu.Unlock()
	if meas.stopped {
		return meas.report
	}
	return meas.m.report(meas.activity, meas.start, now, &meas.st)
}

// Stop ends the measurement and returns its report. It is idempotent: later
// calls return the same report.
func (meas *Measurement) Stop() Report {
	meas.stopOnce.Do(func() {
		meas.cancel()
		<-meas.done
		end := meas.m.opts.now()
		meas.sample(end)
		meas.mu.Lock()
		meas.report = meas.m.report(meas.activity, meas.start, end, &meas.st)
		meas.stopped = true
		meas.mu.Unlock()
	})
	return meas.report
}

// report turns the accumulated readings into a Report.
func (m *Meter) report(activity string, start, end time.Time, st *samplerState) Report {
	r := Report{
		Activity:         activity,
		Start:            start.UTC(),
		End:              end.UTC(),
		DurationS:        end.Sub(start).Seconds(),
		PUE:              m.pue,
		IntensityGPerKWh: m.intensity.GramsPerKWh,
		IntensitySource:  m.intensity.Source,
		CountryISO:       m.intensity.CountryISO,
		CountryName:      m.intensity.CountryName,
		Region:           m.opts.Region,
		CloudProvider:    normProvider(m.opts.CloudProvider),
		CloudRegion:      m.opts.CloudRegion,
		CPUModel:         m.cpuModel,
		CPUThreads:       m.cpuThreads,
		GPUModel:         m.gpuModel,
		GPUCount:         m.gpuCount,
		RAMTotalGiB:      m.ramTotalBytes / gib,
		Samples:          st.samples,
		TrackingMode:     "process",
	}
	r.Notes = append(append([]string(nil), m.notes...), st.notes...)
	dur := r.DurationS

	// CPU time and utilisation are reported whatever the energy method.
	var cpuSeconds float64
	cpuOK := false
	if st.cpuOK {
		if v, err := procCPUSeconds(m.opts.ProcRoot); err == nil {
			cpuSeconds, cpuOK = v-st.cpuStart, true
			r.CPUSeconds = cpuSeconds
			if dur > 0 && m.cpuThreads > 0 {
				r.CPUUtilisation = cpuSeconds / (dur * float64(m.cpuThreads))
			}
		} else {
			r.Notes = append(r.Notes, err.Error())
		}
	}

	// CPU energy.
	var cpuJ float64
	switch {
	case st.raplOK:
		cpuJ = st.raplPkgJ
		r.CPUMethod = MethodRAPL
		r.TrackingMode = "machine"
	case cpuOK:
		est := EstimateCPU(m.cpuSpec, m.cpuKnown, cpuSeconds, dur)
		cpuJ = est.EnergyJ
		r.CPUMethod = est.Method
		r.CPUWattsPerThread = est.WattsPerThread
	default:
		r.CPUMethod = MethodNone
	}

	// RAM energy: DRAM counters where RAPL has them, else the estimate.
	var ramJ float64
	switch {
	case st.raplOK && len(m.rapl.DRAM) > 0:
		ramJ = st.raplDRAM
		r.RAMMethod = MethodRAPLDRAM
	case st.rssOK && dur > 0:
		ramJ = EstimateRAMJoules(st.rssByteSec)
		r.RAMMethod = MethodRAMEstimate
	default:
		r.RAMMethod = MethodNone
	}
	if st.rssOK && dur > 0 {
		r.RAMUsedGiB = st.rssByteSec / dur / gib
		r.RAMPeakGiB = st.rssPeak / gib
	}

	// GPU energy.
	var gpuJ float64
	switch {
	case st.gpuOK && st.gpuCounter:
		gpuJ = st.gpuLastJ - st.gpuFirstJ
		if gpuJ < 0 { // counter reset (driver reload): unusable
			gpuJ = 0
			r.Notes = append(r.Notes, "gpu: energy counter went backwards; GPU term dropped")
		}
		r.GPUMethod = m.gpuMethod
	case st.gpuOK:
		gpuJ = st.gpuPowerJ
		r.GPUMethod = MethodNVMLPowerSamples
	case m.gpu == nil:
		r.GPUMethod = m.gpuMethod
	default:
		r.GPUMethod = MethodNone
	}

	r.CPUEnergyKWh = cpuJ / 3.6e6
	r.RAMEnergyKWh = ramJ / 3.6e6
	r.GPUEnergyKWh = gpuJ / 3.6e6
	if dur > 0 {
		r.CPUPowerW = cpuJ / dur
		r.RAMPowerW = ramJ / dur
		r.GPUPowerW = gpuJ / dur
	}
	r.finish()
	return r
}

// finish computes the totals from the component energies, PUE and intensity.
func (r *Report) finish() {
	r.EnergyKWh = (r.CPUEnergyKWh + r.GPUEnergyKWh + r.RAMEnergyKWh) * r.PUE
	r.EmissionsKg = r.EnergyKWh * r.IntensityGPerKWh / 1000
	if r.DurationS > 0 {
		r.EmissionsRateKgPerS = r.EmissionsKg / r.DurationS
	}
}

// CPUEstimate is the result of EstimateCPU.
type CPUEstimate struct {
	Method         string
	WattsPerThread float64
	PowerW         float64 // average over the interval
	EnergyJ        float64
}

// EstimateCPU estimates the energy of cpuSeconds of process CPU time spent
// during wall seconds: power per hardware thread (TDP / threads of a known
// model, else DefaultWattsPerThread) × CPU seconds. Average power is that
// energy over wall seconds.
func EstimateCPU(spec CPUSpec, known bool, cpuSeconds, wall float64) CPUEstimate {
	e := CPUEstimate{Method: MethodDefaultPerThread, WattsPerThread: DefaultWattsPerThread}
	if known {
		e.Method, e.WattsPerThread = MethodTDPUtilisation, spec.WattsPerThread()
	}
	if cpuSeconds < 0 {
		cpuSeconds = 0
	}
	e.EnergyJ = e.WattsPerThread * cpuSeconds
	if wall > 0 {
		e.PowerW = e.EnergyJ / wall
	}
	return e
}

// EstimateRAMJoules converts ∫ resident bytes dt (byte·seconds) to joules at
// RAMWattsPerGiB.
func EstimateRAMJoules(byteSeconds float64) float64 {
	return RAMWattsPerGiB * byteSeconds / gib
}

// RegionFromEnv reads the cloud provider and region from the worker's own
// configuration (environment variables), never from the network:
// LORAFLOW_CLOUD_PROVIDER / LORAFLOW_CLOUD_REGION first, then AWS_REGION or
// AWS_DEFAULT_REGION (aws), GOOGLE_CLOUD_REGION or CLOUDSDK_COMPUTE_REGION
// (gcp), AZURE_REGION or AZURE_LOCATION (azure). lookup is os.LookupEnv when nil.
func RegionFromEnv(lookup func(string) (string, bool)) (provider, region string) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	if p, r := get("LORAFLOW_CLOUD_PROVIDER"), get("LORAFLOW_CLOUD_REGION"); p != "" && r != "" {
		return normProvider(p), r
	}
	for _, c := range []struct{ provider, env string }{
		{"aws", "AWS_REGION"}, {"aws", "AWS_DEFAULT_REGION"},
		{"gcp", "GOOGLE_CLOUD_REGION"}, {"gcp", "CLOUDSDK_COMPUTE_REGION"},
		{"azure", "AZURE_REGION"}, {"azure", "AZURE_LOCATION"},
	} {
		if v := get(c.env); v != "" {
			return c.provider, v
		}
	}
	return "", ""
}

// Describe says in one line what this Meter measures with on this machine,
// for logs: methods, CPU, intensity and PUE.
func (m *Meter) Describe() string {
	ram := MethodRAMEstimate
	if m.rapl != nil && len(m.rapl.DRAM) > 0 {
		ram = MethodRAPLDRAM
	}
	gpu := m.gpuMethod
	if m.gpuCount > 0 {
		gpu = fmt.Sprintf("%s (%d x %s)", gpu, m.gpuCount, m.gpuModel)
	}
	return fmt.Sprintf("cpu=%s (%d x %s) gpu=%s ram=%s; intensity %g gCO2e/kWh (%s); PUE %g",
		m.CPUMethod(), m.cpuThreads, m.cpuModel, gpu, ram, m.intensity.GramsPerKWh, m.intensity.Source, m.pue)
}
