package pipeline

import (
	"context"
	"strings"

	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/spec"
)

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

// Measure runs f under a carbon meter for step and returns what it used
// (a zero report, and f still run, when the meter cannot start): a remote
// trainer (`loraflow train`) reports it in its result, so that the worker
// attests the trainer's energy, not its own waiting.
func Measure(ctx context.Context, opts carbon.Options, step string, f func() error) (carbon.Report, error) {
	m, err := carbon.NewMeter(opts)
	if err != nil {
		return carbon.Report{Notes: []string{"no energy measurement: " + err.Error()}}, f()
	}
	defer m.Close()
	meas := m.Start(ctx, step)
	err = f()
	return meas.Stop(), err
}

// Counterfactual estimates what full fine-tuning of the same run would have
// cost, from the run's FLOP counts (the engine's FLOP model, counted where
// training ended) and the measured training figures. A training result
// recorded without them gets them from the base model and the spec.
func Counterfactual(baseDir string, s spec.Spec, t TrainOutput, trainUsage carbon.Report) (*carbon.Counterfactual, error) {
	fc := t.FLOPs
	if fc.AdapterParams == 0 {
		m, err := lora.LoadModel(baseDir)
		if err != nil {
			return nil, err
		}
		cfg, err := s.PEFT(m.Config().ModelType)
		if err != nil {
			return nil, err
		}
		fc = TrainingFLOPs(m, cfg, s.TrainConfig(""), t.TrainableParams)
	}
	cf, err := carbon.CounterfactualFromFLOPs(fc, carbon.LoRARun{
		Tokens: t.Tokens, Seconds: trainUsage.DurationS, TokensPerSec: t.TokensPerSec,
		EnergyKWh: trainUsage.EnergyKWh, EmissionsKg: trainUsage.EmissionsKg, BytesPerParam: 4,
	})
	if err != nil {
		return nil, err
	}
	return &cf, nil
}
