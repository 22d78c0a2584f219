package loraflow

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/loraflow/loraflow/activities"
	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/internal/metrics"
	"github.com/loraflow/loraflow/spec"
)

// energyInterceptor measures every activity the worker runs: it starts a
// carbon meter before the activity, stops it after, fills the Usage field
// of the activity's output, appends a CodeCarbon-compatible row to the
// run's emissions.csv in the artifact store and updates the Prometheus
// metrics.
type energyInterceptor struct {
	interceptor.WorkerInterceptorBase
	acts *activities.Activities
}

func newEnergyInterceptor(acts *activities.Activities) interceptor.WorkerInterceptor {
	return &energyInterceptor{acts: acts}
}

func (e *energyInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &energyActivityInbound{acts: e.acts}
	i.Next = next
	return i
}

type energyActivityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	acts *activities.Activities
}

// specCarrier is an activity input that names its run's spec.
type specCarrier interface{ RunSpec() spec.Spec }

func (i *energyActivityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	name := info.ActivityType.Name
	var sp *spec.Spec
	if len(in.Args) > 0 {
		if c, ok := in.Args[0].(specCarrier); ok {
			s := c.RunSpec()
			sp = &s
		}
	}
	opts := activities.MeterOptions(spec.Carbon{}, i.acts.Region, i.acts.PUE)
	if sp != nil {
		opts = activities.MeterOptions(sp.Carbon, i.acts.Region, i.acts.PUE)
	}
	meter, err := carbon.NewMeter(opts)
	if err != nil {
		i.acts.Logger.Warn("no energy measurement", "activity", name, "err", err)
		return i.Next.ExecuteActivity(ctx, in)
	}
	defer meter.Close()
	start := time.Now()
	m := meter.Start(ctx, name)
	result, err := i.Next.ExecuteActivity(ctx, in)
	report := m.Stop()

	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	metrics.ActivitySeconds.WithLabelValues(name, outcome).Observe(time.Since(start).Seconds())
	metrics.EnergyKWh.WithLabelValues(name, report.CPUMethod).Add(report.EnergyKWh)
	metrics.EmissionsKg.WithLabelValues(name).Add(report.EmissionsKg)
	if sp != nil {
		run := carbon.RunInfo{ProjectName: sp.Name, RunID: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID, Timestamp: time.Now()}
		csv := filepath.Join(i.acts.Store.Root(), "emissions", fileName(info.WorkflowExecution.ID)+".csv")
		cerr := os.MkdirAll(filepath.Dir(csv), 0o755)
		if cerr == nil {
			cerr = carbon.AppendCSV(csv, run, report)
		}
		if cerr != nil {
			i.acts.Logger.Warn("emissions.csv not written", "path", csv, "err", cerr)
		}
	}
	if err != nil {
		return result, err
	}
	return withUsage(result, report), nil
}

// withUsage returns result with its Usage field (if it has one) set.
func withUsage(result any, u activities.Usage) any {
	v := reflect.ValueOf(result)
	if !v.IsValid() || v.Kind() != reflect.Struct {
		return result
	}
	cp := reflect.New(v.Type()).Elem()
	cp.Set(v)
	f := cp.FieldByName("Usage")
	if !f.IsValid() || !f.CanSet() || f.Type() != reflect.TypeOf(u) {
		return result
	}
	f.Set(reflect.ValueOf(u))
	return cp.Interface()
}

// fileName makes a workflow ID (free text) safe as one file name.
func fileName(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == os.PathSeparator {
			return '_'
		}
		return r
	}, strings.TrimLeft(id, "."))
}
