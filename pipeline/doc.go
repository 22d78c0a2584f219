// Package pipeline is the work of the pipeline's steps, free of Temporal,
// one file per step:
//
//	prepare.go   PrepareData: validate, dedupe and split the dataset into a snapshot
//	train.go     TrainAdapter (in process) and remote.go TrainRemotely (a RemoteTrainer)
//	evaluate.go  Evaluate: base, adapter and champion on the held-out split
//	attest.go    Attest: model card, signed provenance, model-signing, eval and carbon statements
//	merge.go     Merge: W' = W0 + scale·B·A, verified and checked for equivalence
//	publish.go   Publish: verify, then one registry version
//
// types.go holds the steps' inputs and outputs, which are also the Temporal
// activities' payloads. The activities package wraps these steps for
// Temporal (the trust policy's checks, heartbeats, retries, error
// classification, energy measurement); `loraflow train` calls TrainAdapter
// directly.
//
// A step that fails in a way retrying cannot fix returns an *Error whose
// Type comes from errors.go, the one catalogue of the stable error type
// names; the engine's own input errors (lora.InputError) pass through.
package pipeline
