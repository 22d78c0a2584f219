package activities

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
)

// Stable error type names of non-retryable failures.
const (
	ErrBadData            = "BadData"            // malformed dataset rows
	ErrBadSpec            = "BadSpec"            // the spec cannot be run
	ErrVerificationFailed = "VerificationFailed" // unsigned, tampered or untrusted artifact
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
