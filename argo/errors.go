package argo

import (
	"errors"
	"fmt"
)

// Reasons of an *Error: stable names, usable as Temporal error types.
const (
	// ReasonBadInput: the Job is malformed, or the trainer exited 2 (bad input).
	ReasonBadInput = "BadInput"
	// ReasonTrainerFailed: the trainer exited with another non-zero code (or was killed).
	ReasonTrainerFailed = "TrainerFailed"
	// ReasonWorkflowError: Argo could not run the step (pod deleted, node lost, ...).
	ReasonWorkflowError = "WorkflowError"
	// ReasonDeadlineExceeded: the run passed the Workflow's activeDeadlineSeconds.
	ReasonDeadlineExceeded = "DeadlineExceeded"
	// ReasonStopped: someone else stopped or terminated the Workflow.
	ReasonStopped = "Stopped"
	// ReasonDeleted: the Workflow disappeared while it was being watched.
	ReasonDeleted = "Deleted"
	// ReasonRejected: the API server refused the Workflow (RBAC, invalid spec).
	ReasonRejected = "Rejected"
	// ReasonAPIUnavailable: the API server failed every call for APIOutageTimeout.
	ReasonAPIUnavailable = "APIUnavailable"
	// ReasonInvalidAdapter: the Workflow succeeded but its output folder is not a valid adapter.
	ReasonInvalidAdapter = "InvalidAdapter"
)

// ExitBadInput is the trainer exit code for bad input (never retried).
const ExitBadInput = 2

// Error is a failed training hand-off. Retryable says whether running the
// same Job again may succeed.
type Error struct {
	Workflow  string // Workflow name ("" before one exists)
	Phase     string // the Workflow's last phase, if known
	Reason    string // one of the Reason* constants
	ExitCode  int    // trainer exit code, -1 when unknown
	Message   string // Argo's or the trainer's message
	Retryable bool
	Err       error // underlying error, if any
}

func (e *Error) Error() string {
	s := "argo: "
	if e.Workflow != "" {
		s += "workflow " + e.Workflow + ": "
	}
	s += e.Reason
	if e.Phase != "" {
		s += " (phase " + e.Phase + ")"
	}
	if e.ExitCode >= 0 {
		s += fmt.Sprintf(", exit code %d", e.ExitCode)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err, returned by Train, may go away when the
// same Job is tried again. Errors that are not an *Error (context
// cancellation aside) count as retryable.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	return true
}
