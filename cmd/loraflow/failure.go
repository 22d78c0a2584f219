package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/loraflow/loraflow/activities"
)

// runError is how a run that did not complete is reported: once, in one
// line (what ended it, the error type and whether a retry could help),
// then where training stood. The SDK's error repeats each cause's message
// in every wrapper of the chain, each with its own retryable flag; this
// takes the outermost application error, which is the one the retry
// policy acted on.
type runError struct {
	id        string
	outcome   string // failed, canceled, terminated, timed out
	activity  string // the activity that failed, if one did
	errType   string
	message   string
	retryable bool
	train     *activities.TrainProgress
	err       error
}

func newRunError(id string, err error, train *activities.TrainProgress) *runError {
	e := &runError{id: id, outcome: "failed", train: train, err: err}
	var (
		canceled   *temporal.CanceledError
		terminated *temporal.TerminatedError
		timeout    *temporal.TimeoutError
		act        *temporal.ActivityError
		app        *temporal.ApplicationError
	)
	switch {
	case errors.As(err, &canceled):
		e.outcome = "canceled"
	case errors.As(err, &terminated):
		e.outcome = "terminated"
	}
	if errors.As(err, &act) {
		e.activity = act.ActivityType().GetName()
	}
	switch {
	case e.outcome != "failed":
	case errors.As(err, &app):
		e.errType, e.retryable = app.Type(), !app.NonRetryable()
		e.message = trimRepeats(app.Message(), e.activity, e.errType)
	case errors.As(err, &timeout):
		e.outcome = "timed out"
		e.errType, e.retryable = timeout.TimeoutType().String(), true
		e.message = timeout.Message()
	default:
		e.message = err.Error()
	}
	return e
}

// trimRepeats drops what the line already says from the front of an
// activity's message: "TrainLoRA: lora: TargetModuleNotFound: x" is "x".
func trimRepeats(msg, activity, errType string) string {
	msg = strings.TrimPrefix(msg, activity+": ")
	if i := strings.Index(msg, errType+": "); errType != "" && i >= 0 && i <= 40 {
		msg = msg[i+len(errType)+2:]
	}
	return msg
}

func (e *runError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s %s", e.id, e.outcome)
	if e.train != nil && e.train.TotalSteps > 0 && (e.outcome != "failed" || e.activity == "TrainLoRA") {
		fmt.Fprintf(&b, " at step %d/%d", e.train.Step, e.train.TotalSteps)
		if step, path, ok := checkpointStep(e.train.CheckpointURI); ok {
			fmt.Fprintf(&b, ", last checkpoint step %d (%s)", step, path)
		} else {
			b.WriteString(", no checkpoint yet")
		}
	}
	if e.outcome == "failed" || e.outcome == "timed out" {
		b.WriteString(": ")
		if e.activity != "" {
			b.WriteString(e.activity + ": ")
		}
		if e.errType != "" {
			verdict := "not retryable"
			if e.retryable {
				verdict = "retryable, retries used up"
			}
			fmt.Fprintf(&b, "%s (%s): ", e.errType, verdict)
		}
		b.WriteString(e.message)
	}
	if e.outcome == "canceled" && e.train != nil && e.train.CheckpointURI != "" {
		b.WriteString("; `loraflow run` with the same spec resumes from that checkpoint")
	}
	return b.String()
}

func (e *runError) Unwrap() error { return e.err }

// checkpointStep is the step of a checkpoint folder named step-NNNNNN.
func checkpointStep(uri string) (int, string, bool) {
	if uri == "" {
		return 0, "", false
	}
	path := strings.TrimPrefix(uri, "file://")
	n, ok := strings.CutPrefix(filepath.Base(path), "step-")
	if !ok {
		return 0, path, false
	}
	step, err := strconv.Atoi(n)
	return step, path, err == nil
}
