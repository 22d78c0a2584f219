package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/pipeline"
)

// ErrWorkDirLocked is the (retryable) error type of an activity whose work
// folder another holder has: it is tried again after the retry backoff.
const ErrWorkDirLocked = pipeline.ErrWorkDirLocked

// workDirError gives a held work folder its stable, retryable error type.
func workDirError(err error) error {
	if errors.Is(err, artifact.ErrWorkDirLocked) {
		return temporal.NewApplicationError(err.Error(), ErrWorkDirLocked, err)
	}
	return err
}

// injectFault is called at the points of an activity where a worker crash
// matters for what a retry finds ("train:trained", "train:committed",
// "train:recorded"); an error returned stops the activity there, as a crash
// would. The fault suite replaces it; in production it does nothing.
var injectFault = func(point string) error { return nil }
