package activities

import (
	"log/slog"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/trust"
)

// Activities carries the dependencies of every pipeline step. Register a
// *Activities with a worker; each exported method is one activity.
type Activities struct {
	Store *artifact.Store
	// Trust is the worker operator's trust policy: the input roots a spec
	// may read, the registries and signing keys it may name, the keys
	// verification trusts. Required.
	Trust *trust.Policy
	// Region and PUE are the worker's carbon defaults; the spec overrides them.
	Region string
	PUE    float64
	// RemoteTrainer, when set, runs TrainLoRA's training elsewhere (Argo
	// Workflows on GPU nodes); the worker only waits, heartbeats and checks
	// the adapter that comes back.
	RemoteTrainer pipeline.RemoteTrainer
	Logger        *slog.Logger
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

func (a *Activities) path(ref artifact.Ref) (string, error) { return a.Store.Path(ref) }
