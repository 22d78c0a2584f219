// Package carbon measures the energy and emissions of each pipeline activity
// and estimates what full fine-tuning would have cost instead of LoRA.
//
// It is pure Go with no Temporal import: activities (or a worker interceptor)
// create one Meter and wrap each activity:
//
//	m, err := carbon.NewMeter(carbon.Options{CountryISO: "FRA", PUE: 1.2})
//	meas := m.Start(ctx, "TrainLoRA")
//	... work ...
//	rep := meas.Stop()
//	err = carbon.AppendCSV("emissions.csv", carbon.RunInfo{RunID: runID}, rep)
//
// # Energy
//
// Each term of a Report records the method that produced it:
//
//   - CPU, "rapl": the package energy counters of the Linux powercap framework,
//     <SysfsRoot>/sys/class/powercap/intel-rapl:N/energy_uj (AMD Zen exposes
//     the same files; "amd-rapl:N" is accepted too). Only top-level package
//     zones are summed: core and uncore sub-zones are parts of the package, and
//     "psys" contains it. The counter wraps at max_energy_range_uj; a reading
//     smaller than the previous one means one wrap, so
//     Δ = max_energy_range_uj − previous + current. The background sampler
//     reads often enough that two wraps cannot happen between readings.
//     RAPL measures the whole package (tracking_mode "machine").
//   - CPU, "tdp-utilisation": the model name from /proc/cpuinfo looked up in
//     data/tdp.csv; power per hardware thread w = TDP / threads; energy =
//     w × (this process's user+system CPU seconds, from /proc/self/stat
//     fields 14–15 at USER_HZ = 100); average power = energy / wall seconds.
//     Equivalently TDP × utilisation × (visible threads / model threads) where
//     utilisation = CPU seconds / (wall seconds × visible threads), so a 2-vCPU
//     slice of a 64-core part is charged for its share, not the whole package.
//   - CPU, "default-4w-per-thread": the same with w = 4 W for a model not in
//     the table (docs/architecture.md, Carbon estimates).
//   - GPU, "nvml" or "nvml-power-samples": a GPUSource passed in Options.GPU,
//     or opened by a registered GPUOpener (a blank import of carbon/nvml
//     registers NVML, loaded with dlopen, no cgo): energy counter difference,
//     else trapezoidal integration of power samples. Without either, or where
//     libnvidia-ml.so.1 is absent, the report says "none (no GPU library: no
//     GPU term)"; NVML with no device says "none (no GPU)".
//   - RAM, "rapl-dram" where RAPL has DRAM zones, else "ram-estimate":
//     0.3725 W per GiB (Green Algorithms' per-GB figure) × the process's
//     resident set (VmRSS of /proc/self/status), integrated over time by the
//     trapezoid rule between samples.
//
// Unreadable sources never fail a measurement: NewMeter and Stop record what
// they fell back to in Notes. Sampling runs every Options.SampleInterval
// (default 2 s, never under 100 ms) and reads a handful of small files: about
// 0.1 ms a sample on the 2-core development machine (BenchmarkSample), so
// under 0.01 % of one core at the default interval.
//
// # Emissions
//
//	energy_consumed [kWh] = (cpu_energy + gpu_energy + ram_energy) × PUE
//	emissions [kg]        = energy_consumed × intensity [g/kWh] / 1000
//
// PUE defaults to 1.0 (CodeCarbon; Green Algorithms uses 1.67 for a typical
// data centre). Intensity: Options.IntensityOverride if > 0, else the cloud
// region's country (data/cloud_regions.csv), else Options.CountryISO
// (data/intensity.csv, Our World in Data averages), else the world average
// 475 gCO2e/kWh. RegionFromEnv reads the cloud region from environment
// variables only; nothing is looked up on the network.
//
// # Outputs
//
// CSVColumns is CodeCarbon's emissions.csv header (the 3.1+ layout; AppendCSV
// also appends to 2.x-3.0 files in their own layout; units as
// CodeCarbon: duration s, emissions kg, power W, energy kWh; as CodeCarbon
// does, the CSV's per-device energies include PUE, while Report's do not). JSONSummary and
// Summary.Tags give the provenance and registry forms; ModelCardBlock the
// Hugging Face model-card co2_eq_emissions block (emissions in grams).
//
// # Full fine-tuning counterfactual
//
// CounterfactualFromFLOPs takes the run's FLOPs per token, LoRA and full
// fine-tuning, from the engine's FLOP model (lora's Model.StepFLOPs for the
// real model and PEFT config, counted where training ends by
// pipeline.TrainingFLOPs); carbon has no FLOP model of its own. The rule of
// thumb that model follows, and the hand count the tests check the
// counterfactual's arithmetic with: with M = Σ in·out over all per-token matrix multiplies (output head
// included, also when tied), A = 4·layers·seq·attn_dim (the QKᵀ and A·V
// multiplies of the forward pass) and R = Σ r·(in+out) over adapted linears,
// counting 2 FLOPs per multiply-add:
//
//	full: forward 2M + A, input gradients 2M + 2A, weight gradients 2M  = 6M + 3A
//	LoRA: forward 2M + A + 2R, input gradients 2M + 2A + 2R, adapter
//	      weight gradients 2R                                            = 4M + 3A + 6R
//
// per training token. Full fine-tuning is assumed to run at the LoRA run's
// achieved FLOP/s and average power, so its time and energy are the measured
// ones × (full FLOPs / LoRA FLOPs). Optimizer memory is AdamW's two fp32
// moments (8 bytes; 12 with mixed-precision master weights) per trainable
// parameter: every parameter for full fine-tuning, R for LoRA; gradients take
// BytesPerParam per trainable parameter.
//
// Concurrency caveat: RAPL and process CPU time are shared by activities that
// run at the same time in one worker process, so overlapping measurements each
// include the others' consumption; Totals then double-counts the overlap.
package carbon
