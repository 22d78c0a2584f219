package activities

import (
	"strings"

	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/spec"
)

// Usage is one activity's measured energy and emissions. The worker's
// energy interceptor fills the Usage field of every activity output.
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
// region and PUE) into carbon meter options. A region is an ISO country
// code ("FRA") or provider:region ("aws:eu-west-3").
func MeterOptions(c spec.Carbon, workerRegion string, workerPUE float64) carbon.Options {
	region, pue := c.Region, c.PUE
	if region == "" {
		region = workerRegion
	}
	if pue == 0 {
		pue = workerPUE // 0 here too: carbon's default, 1.0
	}
	o := carbon.Options{PUE: pue, IntensityOverride: c.IntensityGCO2PerKWh}
	if provider, r, ok := strings.Cut(region, ":"); ok {
		o.CloudProvider, o.CloudRegion = provider, r
	} else {
		o.CountryISO = region
	}
	return o
}
