package lora

import (
	"errors"
	"fmt"
)

// Kinds of InputError. They are stable names: activities turn them into
// non-retryable errors of the same type.
const (
	KindCorruptCheckpoint    = "CorruptCheckpoint"
	KindUnknownModelType     = "UnknownModelType"
	KindMissingTensor        = "MissingTensor"
	KindBadConfig            = "BadConfig"
	KindTargetModuleNotFound = "TargetModuleNotFound"
	KindRankTooLarge         = "RankTooLarge"
	KindAdapterMismatch      = "AdapterMismatch"
	KindNonFiniteLoss        = "NonFiniteLoss"
	KindBadData              = "BadData"
	KindBadTrainConfig       = "BadTrainConfig"
)

// InputError reports input that will not work however often it is retried:
// a bad checkpoint, adapter, configuration or dataset.
type InputError struct {
	Kind string
	Msg  string
	Err  error // optional cause
}

func (e *InputError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("lora: %s: %s: %v", e.Kind, e.Msg, e.Err)
	}
	return fmt.Sprintf("lora: %s: %s", e.Kind, e.Msg)
}

func (e *InputError) Unwrap() error { return e.Err }

func inputErr(kind string, format string, args ...any) error {
	return &InputError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// IsInputError reports whether err (or an error it wraps) is an *InputError, and returns it.
func IsInputError(err error) (*InputError, bool) {
	var ie *InputError
	ok := errors.As(err, &ie)
	return ie, ok
}
