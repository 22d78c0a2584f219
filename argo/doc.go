// Package argo is loraflow's Argo Workflows trainer backend: it hands one
// training run to a GPU node as an argoproj.io/v1alpha1 Workflow, watches it
// to completion while reporting progress, stops it when the caller gives up,
// and checks the adapter folder it leaves on the shared artifact store.
//
// The package knows nothing about Temporal. A training activity calls
// [Backend.Train] with a heartbeat callback that records Temporal heartbeats,
// and turns an [*Error] whose Retryable field is false into a non-retryable
// application error (its Reason is a stable type name).
//
// The trainer image's contract (arguments, outputs, exit codes) is described
// in README.md beside this file.
package argo
