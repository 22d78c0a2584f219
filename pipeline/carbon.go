package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loraflow/loraflow/artifact"
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
// (a zero report with a note, and f still run, when the meter cannot
// start). A remote trainer (`loraflow train`) reports it in its result, so
// that the worker attests the trainer's energy, not its own waiting.
//
// With a file, the step may be killed and run again (a trainer pod
// restarted, resuming from its checkpoints): the energy so far is saved
// there every saveEvery and at the end, and a run that finds the file adds
// its own to it, so the report covers every run of the step.
func Measure(ctx context.Context, opts carbon.Options, step, file string, f func() error) (carbon.Report, error) {
	var earlier *carbon.Report
	if file != "" {
		if b, err := os.ReadFile(file); err == nil {
			var r carbon.Report
			if json.Unmarshal(b, &r) == nil && r.Activity != "" {
				earlier = &r
			}
		}
	}
	m, err := carbon.NewMeter(opts)
	if err != nil {
		r := carbon.Report{Notes: []string{"no energy measurement: " + err.Error()}}
		if earlier != nil {
			r = *earlier
		}
		return r, f()
	}
	defer m.Close()
	meas := m.Start(ctx, step)
	save := func(r carbon.Report) {
		if file == "" {
			return
		}
		b, _ := json.Marshal(r)
		if os.MkdirAll(filepath.Dir(file), 0o755) == nil {
			_ = artifact.WriteFileAtomic(file, b) // best effort: a lost save loses only energy since the last
		}
	}
	stop := make(chan struct{})
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		t := time.NewTicker(saveEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				save(SumAttempts(earlier, meas.Read()))
			}
		}
	}()
	err = f()
	close(stop)
	<-saved
	total := SumAttempts(earlier, meas.Stop())
	save(total)
	return total, err
}

// saveEvery is how often Measure saves the energy so far.
const saveEvery = 10 * time.Second

// SumAttempts is the usage of every attempt (or run) of one step: the
// earlier ones' and this one's, named as this one.
func SumAttempts(earlier *carbon.Report, this carbon.Report) carbon.Report {
	if earlier == nil || earlier.Activity == "" {
		return this
	}
	if this.Activity == "" {
		return *earlier
	}
	t := carbon.Totals(*earlier, this)
	t.Activity = this.Activity
	return t
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
