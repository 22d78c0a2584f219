// Package workflows holds loraflow's Temporal workflows. LoRAPipeline reads
// like the pipeline it runs:
//
//	PrepareData → TrainLoRA → Evaluate → Gate → Attest(adapter, eval) →
//	Merge → Attest(merged) → Publish
//
// The Gate is workflow code (a pure function of the evaluation and the
// spec's thresholds); every step that touches files, clocks or networks is
// an activity. The adapter is attested before Merge because Merge and
// Publish verify provenance first and refuse anything unsigned.
package workflows
