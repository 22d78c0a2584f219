package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/internal/metrics"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/spec"
)

// Usage is one activity's measured energy and emissions; each activity
// measures itself (measure) and returns it in its output's Usage field.
type Usage = carbon.Report

// CarbonSummary totals a run's activities, with the full fine-tuning
// counterfactual once training is done.
type CarbonSummary = carbon.Summary

// SumUsage totals per-activity usage; zero (unmeasured) entries are left out.
// It is deterministic, so workflows may call it.
func SumUsage(us ...Usage) CarbonSummary {
	var measured []Usage
	for _, u := range us {
		if u.Activity != "" {
			measured = append(measured, u)
		}
	}
	return carbon.NewSummary(measured, nil)
}

// MeterOptions turns a spec's carbon section (falling back to the worker's
// region and PUE) into carbon meter options (pipeline.MeterOptions).
func MeterOptions(c spec.Carbon, workerRegion string, workerPUE float64) carbon.Options {
	return pipeline.MeterOptions(c, workerRegion, workerPUE)
}

// measurement is one activity attempt's energy, measured by the activity
// itself from its start (a.measure) to stop.
type measurement struct {
	a     *Activities
	ctx   context.Context
	name  string
	spec  spec.Spec
	start time.Time
	meter *carbon.Meter       // nil: no meter could start
	meas  *carbon.Measurement // nil with meter
	// earlier is the energy of this activity's earlier attempts, as the
	// last heartbeat they sent carried it (nil: first attempt).
	earlier *Usage

	once  sync.Once
	usage Usage
}

// measure starts measuring this activity attempt with the spec's carbon
// context.
func (a *Activities) measure(ctx context.Context, s spec.Spec) *measurement {
	m := &measurement{a: a, ctx: ctx, name: activity.GetInfo(ctx).ActivityType.Name, spec: s, start: time.Now()}
	if activity.HasHeartbeatDetails(ctx) {
		// TrainProgress and Heartbeat both carry it as Usage; details of
		// another shape (a history from before) carry none.
		var last struct{ Usage *Usage }
		if activity.GetHeartbeatDetails(ctx, &last) == nil {
			m.earlier = last.Usage
		}
	}
	meter, err := carbon.NewMeter(pipeline.MeterOptions(s.Carbon, a.Region, a.PUE))
	if err != nil {
		a.logger().Warn("no energy measurement", "activity", m.name, "err", err)
		return m
	}
	m.meter, m.meas = meter, meter.Start(ctx, m.name)
	return m
}

// read is the attempt's usage so far.
func (m *measurement) read() Usage {
	if m.meas == nil {
		return Usage{}
	}
	return m.meas.Read()
}

// total is the energy of every attempt so far: the earlier ones' and this
// one's reading.
func (m *measurement) total() Usage { return sumAttempts(m.earlier, m.read()) }

// stopAll is stop, returning the usage of every attempt (this one's and
// the earlier ones'): what the activity reports.
func (m *measurement) stopAll(err error) Usage { return sumAttempts(m.earlier, m.stop(err)) }

// stop ends the measurement and records the attempt: its duration and
// outcome, energy and emissions in the Prometheus metrics, and a
// CodeCarbon-compatible row in the run's emissions.csv in the artifact
// store. It returns the attempt's usage; later calls return the same.
func (m *measurement) stop(err error) Usage {
	m.once.Do(func() {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		metrics.ActivitySeconds.WithLabelValues(m.name, outcome).Observe(time.Since(m.start).Seconds())
		if m.meas == nil {
			return
		}
		m.usage = m.meas.Stop()
		m.meter.Close()
		metrics.EnergyKWh.WithLabelValues(m.name, m.usage.CPUMethod).Add(m.usage.EnergyKWh)
		metrics.EmissionsKg.WithLabelValues(m.name).Add(m.usage.EmissionsKg)
		info := activity.GetInfo(m.ctx)
		run := carbon.RunInfo{ProjectName: m.spec.Name, RunID: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID, Timestamp: time.Now()}
		csv := filepath.Join(m.a.Store.Root(), "emissions", fileName(info.WorkflowExecution.ID)+".csv")
		cerr := os.MkdirAll(filepath.Dir(csv), 0o755)
		if cerr == nil {
			cerr = carbon.AppendCSV(csv, run, m.usage)
		}
		if cerr != nil {
			m.a.logger().Warn("emissions.csv not written", "path", csv, "err", cerr)
		}
	})
	return m.usage
}

// sumAttempts is pipeline.SumAttempts: earlier attempts' usage and this one's.
func sumAttempts(earlier *Usage, this Usage) Usage { return pipeline.SumAttempts(earlier, this) }

// fileName makes a workflow ID (free text) safe as one file name.
func fileName(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == os.PathSeparator {
			return '_'
		}
		return r
	}, strings.TrimLeft(id, "."))
}
