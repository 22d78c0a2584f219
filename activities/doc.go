// Package activities holds the pipeline's Temporal activities: thin
// adapters, one file per step, around the Temporal-free steps of package
// pipeline. Activities, the struct every activity is a method of, carries
// their dependencies: the artifact store, the worker operator's trust
// policy (input roots, registries, signing and trusted keys), the carbon
// defaults and an optional remote trainer.
//
// Each activity checks its spec against the trust policy, keeps its
// heartbeat going while the step runs, and classifies the step's error:
// bad input fails with a non-retryable application error whose type is one
// of pipeline/errors.go's names; anything else is retried.
//
// Every activity takes and returns references to artifacts in the store,
// never tensors. Outputs are content-addressed and indexed by a key derived
// from the inputs, so a retried activity that already produced its output
// returns it.
package activities
