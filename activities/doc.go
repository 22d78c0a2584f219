// Package activities holds the pipeline's Temporal activities: one struct,
// Activities, carrying their dependencies (artifact store, signer, trusted
// keys, registry opener, carbon meter), and one file per step.
//
// Every activity takes and returns references to artifacts in the store,
// never tensors. Outputs are content-addressed and indexed by a key derived
// from the inputs, so a retried activity that already produced its output
// returns it. Bad input fails with a non-retryable application error whose
// type is one of the Err* names below; anything else is retried.
package activities
