// Package pipeline is the work of the pipeline's steps, free of Temporal:
// loading a base model, training an adapter (in process or on a
// RemoteTrainer), and checking an adapter against its base. The activities
// package wraps these steps for Temporal (heartbeats, retries, error
// classification); `loraflow train` calls them directly.
//
// errors.go is the one catalogue of the stable error type names a failed
// step reports.
package pipeline
