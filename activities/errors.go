package activities

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/pipeline"
)

// Stable error type names of non-retryable failures (the catalogue is
// pipeline/errors.go).
const (
	ErrBadData            = pipeline.ErrBadData
	ErrBadSpec            = pipeline.ErrBadSpec
	ErrVerificationFailed = pipeline.ErrVerificationFailed
)

// nonRetryable wraps err as a non-retryable application error of the given type.
func nonRetryable(errType string, err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), errType, err)
}

// classify turns known bad-input errors into non-retryable application
// errors and leaves the rest retryable.
func classify(step string, err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) { // already classified
		return err
	}
	var pe *pipeline.Error
	if errors.As(err, &pe) {
		return nonRetryable(pe.Type, fmt.Errorf("%s: %w", step, err))
	}
	var bad *dataset.BadDataError
	if errors.As(err, &bad) {
		return nonRetryable(ErrBadData, fmt.Errorf("%s: %w", step, err))
	}
	var ie *lora.InputError
	if errors.As(err, &ie) {
		return nonRetryable(ie.Kind, fmt.Errorf("%s: %w", step, err))
	}
	return fmt.Errorf("%s: %w", step, err)
}
