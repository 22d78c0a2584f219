package activities

import (
	"log/slog"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/pipeline"
)

// Activities carries the dependencies of every pipeline step. Register a
// *Activities with a worker; each exported method is one activity.
type Activities struct {
	Store *artifact.Store
	// SigningKey is the key source (PEM path, env:VAR or secret folder) that
	// signs attestations when the spec names none.
	SigningKey string
	// TrustedKeys are public key PEM paths trusted when verifying; the
	// signing key's own public key is always trusted.
	TrustedKeys []string
	// RegistryURI is used when the spec names no registry.
	RegistryURI string
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
