package carbon

import "fmt"

// LoRARun is what was measured for the LoRA run.
type LoRARun struct {
	Tokens       int64   // tokens processed in training (batch × sequence × steps)
	Seconds      float64 // measured training time; Tokens/TokensPerSec when 0
	TokensPerSec float64 // measured throughput; Tokens/Seconds when 0
	EnergyKWh    float64 // measured energy of the training activity (PUE included)
	EmissionsKg  float64 // its emissions
	// BytesPerParam is the size of a weight and of a gradient (4 for fp32).
	BytesPerParam int
	// MasterWeights adds an fp32 master copy of the trainable weights to the
	// optimizer state (mixed-precision training).
	MasterWeights bool
}

// Counterfactual compares the measured LoRA run with full fine-tuning of the
// same model on the same tokens, at the same achieved FLOP/s and the same
// average power. Ratios are full / LoRA.
type Counterfactual struct {
	Tokens int64 `json:"tokens"`

	LoRAFLOPsPerToken float64 `json:"lora_flops_per_token"`
	FullFLOPsPerToken float64 `json:"full_flops_per_token"`
	LoRAFLOPs         float64 `json:"lora_flops"`
	FullFLOPs         float64 `json:"full_flops"`
	AchievedFLOPS     float64 `json:"achieved_flops_per_s"` // LoRA FLOPs / LoRA seconds

	LoRASeconds     float64 `json:"lora_seconds"`
	FullSeconds     float64 `json:"full_seconds"`
	LoRAEnergyKWh   float64 `json:"lora_energy_kwh"`
	FullEnergyKWh   float64 `json:"full_energy_kwh"`
	LoRAEmissionsKg float64 `json:"lora_emissions_kg"`
	FullEmissionsKg float64 `json:"full_emissions_kg"`

	Params              int64 `json:"params"`
	LoRATrainableParams int64 `json:"lora_trainable_params"`
	FullTrainableParams int64 `json:"full_trainable_params"`
	LoRAGradientBytes   int64 `json:"lora_gradient_bytes"`
	FullGradientBytes   int64 `json:"full_gradient_bytes"`
	LoRAOptimizerBytes  int64 `json:"lora_optimizer_bytes"` // AdamW m and v (+ master weights)
	FullOptimizerBytes  int64 `json:"full_optimizer_bytes"`

	FLOPRatio            float64 `json:"flop_ratio"`
	TimeRatio            float64 `json:"time_ratio"`
	EnergyRatio          float64 `json:"energy_ratio"`
	OptimizerMemoryRatio float64 `json:"optimizer_memory_ratio"`

	Assumptions []string `json:"assumptions"`
}

// FLOPCounts are a model's training FLOPs per token, LoRA and full
// fine-tuning, and its parameter counts. The pipeline takes them from the
// engine's own FLOP model (lora's Model.StepFLOPs) for the real model and
// PEFT config (pipeline.TrainingFLOPs): there is no other FLOP model.
type FLOPCounts struct {
	LoRAPerToken  float64 `json:"lora_per_token"`
	FullPerToken  float64 `json:"full_per_token"`
	Params        int64   `json:"params"`
	AdapterParams int64   `json:"adapter_params"`
	// Model names the FLOP model, recorded in the assumptions.
	Model string `json:"model"`
}

// CounterfactualFromFLOPs estimates what full fine-tuning on the run's
// tokens would have cost, from the FLOP counts and the LoRA run's measured
// time and energy.
func CounterfactualFromFLOPs(fc FLOPCounts, run LoRARun) (Counterfactual, error) {
	if run.Tokens <= 0 {
		return Counterfactual{}, fmt.Errorf("carbon: counterfactual: tokens %d, want > 0", run.Tokens)
	}
	if fc.AdapterParams == 0 || fc.LoRAPerToken <= 0 {
		return Counterfactual{}, fmt.Errorf("carbon: counterfactual: no adapted linear (no LoRA rank set)")
	}
	secs := run.Seconds
	if secs <= 0 && run.TokensPerSec > 0 {
		secs = float64(run.Tokens) / run.TokensPerSec
	}
	if secs <= 0 {
		return Counterfactual{}, fmt.Errorf("carbon: counterfactual: need the measured seconds or tokens/s of the LoRA run")
	}
	if run.EnergyKWh < 0 || run.EmissionsKg < 0 {
		return Counterfactual{}, fmt.Errorf("carbon: counterfactual: negative energy %g kWh or emissions %g kg", run.EnergyKWh, run.EmissionsKg)
	}
	bpp := int64(run.BytesPerParam)
	if bpp == 0 {
		bpp = 4
	}
	c := Counterfactual{
		Tokens:            run.Tokens,
		LoRAFLOPsPerToken: fc.LoRAPerToken,
		FullFLOPsPerToken: fc.FullPerToken,
		LoRASeconds:       secs,
		LoRAEnergyKWh:     run.EnergyKWh,
		LoRAEmissionsKg:   run.EmissionsKg,
		Params:            fc.Params,
	}
	c.LoRAFLOPs = c.LoRAFLOPsPerToken * float64(run.Tokens)
	c.FullFLOPs = c.FullFLOPsPerToken * float64(run.Tokens)
	c.AchievedFLOPS = c.LoRAFLOPs / secs
	c.FLOPRatio = c.FullFLOPs / c.LoRAFLOPs
	c.TimeRatio = c.FLOPRatio
	c.EnergyRatio = c.FLOPRatio
	c.FullSeconds = secs * c.TimeRatio
	c.FullEnergyKWh = run.EnergyKWh * c.EnergyRatio
	c.FullEmissionsKg = run.EmissionsKg * c.EnergyRatio

	c.LoRATrainableParams = fc.AdapterParams
	c.FullTrainableParams = c.Params
	c.LoRAGradientBytes = c.LoRATrainableParams * bpp
	c.FullGradientBytes = c.FullTrainableParams * bpp
	perParam := int64(2 * 4) // AdamW first and second moments, fp32
	if run.MasterWeights {
		perParam += 4
	}
	c.LoRAOptimizerBytes = c.LoRATrainableParams * perParam
	c.FullOptimizerBytes = c.FullTrainableParams * perParam
	c.OptimizerMemoryRatio = float64(c.FullOptimizerBytes) / float64(c.LoRAOptimizerBytes)
	c.Assumptions = []string{
		"full fine-tuning runs at the LoRA run's achieved FLOP/s and average power",
		fc.Model,
		"optimizer update and data loading FLOPs neglected",
		fmt.Sprintf("AdamW state %d bytes per trainable parameter; gradients %d bytes", perParam, bpp),
	}
	return c, nil
}
