// Package metrics defines loraflow's Prometheus metrics (activity
// durations, training throughput, energy and emissions) and bridges the
// Temporal SDK's metrics onto the same registry.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

var (
	// ActivitySeconds is each pipeline activity's wall time.
	ActivitySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "loraflow_activity_duration_seconds",
		Help:    "Wall time of loraflow pipeline activities.",
		Buckets: prometheus.ExponentialBuckets(0.1, 4, 10),
	}, []string{"activity", "outcome"})
	// TrainTokensPerSecond is the last training run's throughput.
	TrainTokensPerSecond = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "loraflow_train_tokens_per_second",
		Help: "Training throughput of the last TrainLoRA activity on this worker.",
	})
	// EnergyKWh is the energy measured or estimated per activity.
	EnergyKWh = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loraflow_activity_energy_kwh_total",
		Help: "Energy consumed by loraflow activities (kWh, PUE included).",
	}, []string{"activity", "method"})
	// EmissionsKg is the emissions per activity.
	EmissionsKg = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loraflow_activity_emissions_kg_total",
		Help: "Emissions of loraflow activities (kg CO2e).",
	}, []string{"activity"})
)

// MustRegister adds loraflow's metrics to reg.
func MustRegister(reg prometheus.Registerer) {
	reg.MustRegister(ActivitySeconds, TrainTokensPerSecond, EnergyKWh, EmissionsKg)
}

// NewTemporalHandler reports the Temporal SDK's metrics into reg.
func NewTemporalHandler(reg *prometheus.Registry) client.MetricsHandler {
	reporter := tallyprom.NewReporter(tallyprom.Options{Registerer: reg})
	scope, _ := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope))
}
