package pipeline

import (
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/merge"
)

// The catalogue of stable error type names: every non-retryable failure of
// a step carries one of these as its Temporal application error type, so
// that clients and alerts can match on it. The engine's kinds are defined
// beside the code that detects them (lora, lora/merge) and listed here.
const (
	ErrBadData            = "BadData"            // malformed dataset rows (dataset.BadDataError)
	ErrBadSpec            = "BadSpec"            // the spec cannot be run
	ErrVerificationFailed = "VerificationFailed" // unsigned, tampered or untrusted artifact
	ErrRegistryRejected   = "RegistryRejected"   // the registry refused the publication

	// ErrWorkDirLocked is retryable: another holder has the activity's
	// work folder (artifact.ErrWorkDirLocked); it is tried again later.
	ErrWorkDirLocked = "WorkDirLocked"

	// The engine's input errors (lora.InputError.Kind).
	ErrCorruptCheckpoint    = lora.KindCorruptCheckpoint
	ErrUnknownModelType     = lora.KindUnknownModelType
	ErrMissingTensor        = lora.KindMissingTensor
	ErrBadConfig            = lora.KindBadConfig
	ErrTargetModuleNotFound = lora.KindTargetModuleNotFound
	ErrRankTooLarge         = lora.KindRankTooLarge
	ErrAdapterMismatch      = lora.KindAdapterMismatch
	ErrNonFiniteLoss        = lora.KindNonFiniteLoss
	ErrBadTrainConfig       = lora.KindBadTrainConfig

	// The merge's checks (lora/merge).
	ErrNonFiniteMerge     = merge.KindNonFiniteMerge
	ErrMergeNotEquivalent = merge.KindNotEquivalent

	// ErrRemotePrefix prefixes a remote trainer's own reason (argo's
	// Reason* constants: "ArgoBadInput", "ArgoRejected", ...).
	ErrRemotePrefix = "Argo"
	// ErrRemoteInvalidResult: the remote trainer succeeded but its result
	// file is unreadable.
	ErrRemoteInvalidResult = ErrRemotePrefix + "InvalidResult"
)

// Error is a non-retryable failure with a stable type name from the
// catalogue above; the activities report it as a non-retryable Temporal
// application error of that type.
type Error struct {
	Type string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// NonRetryable wraps err as a non-retryable failure of type typ.
func NonRetryable(typ string, err error) error { return &Error{Type: typ, Err: err} }
