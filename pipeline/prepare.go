package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/dataset"
)

// PrepareData validates, dedupes and splits the dataset files into a
// snapshot artifact of store, and fingerprints the base model folder.
func PrepareData(ctx context.Context, store *artifact.Store, in PrepareDataInput, o StepOptions) (PrepareDataOutput, error) {
	s, logger := in.Spec, loggerOf(o.Logger)
	if st, err := os.Stat(s.BaseModel); err != nil || !st.IsDir() {
		return PrepareDataOutput{}, NonRetryable(ErrBadSpec, fmt.Errorf("base model folder %q: not found", s.BaseModel))
	}
	snap, err := dataset.Prepare(s.Dataset.Files, dataset.Options{
		Format:             s.Dataset.Format,
		ValidationFraction: s.Dataset.ValidationFraction,
		MaxBadRows:         s.Dataset.MaxBadRows,
		Seed:               s.Dataset.Seed,
	})
	if err != nil {
		var bad *dataset.BadDataError
		switch {
		case errors.As(err, &bad):
			return PrepareDataOutput{}, NonRetryable(ErrBadData, err)
		case errors.Is(err, fs.ErrNotExist):
			return PrepareDataOutput{}, NonRetryable(ErrBadSpec, err)
		case errors.Is(err, dataset.ErrInvalid): // retrying cannot help
			return PrepareDataOutput{}, NonRetryable(ErrBadData, err)
		default: // I/O on the data volume: may be transient
			return PrepareDataOutput{}, err
		}
	}
	for _, b := range snap.Manifest.BadRows {
		logger.Warn("skipped bad row", "file", b.File, "line", b.Line, "reason", b.Reason)
	}
	dir, err := store.ScratchDir("snapshot")
	if err != nil {
		return PrepareDataOutput{}, err
	}
	defer os.RemoveAll(dir) // a no-op once committed (moved into the store)
	if err := snap.Write(dir); err != nil {
		return PrepareDataOutput{}, err
	}
	ref, err := store.Commit(ctx, dir)
	if err != nil {
		return PrepareDataOutput{}, err
	}
	baseDigest, err := artifact.DigestDir(ctx, s.BaseModel)
	if err != nil {
		return PrepareDataOutput{}, err
	}
	m := snap.Manifest
	logger.Info("prepared dataset", "snapshot", ref.SHA256, "train", m.Train, "validation", m.Validation, "bad_rows", len(m.BadRows), "duplicates", m.Duplicates)
	return PrepareDataOutput{
		Snapshot:   ref,
		BaseModel:  artifact.Ref{URI: "file://" + s.BaseModel, SHA256: baseDigest},
		Train:      m.Train,
		Validation: m.Validation,
		BadRows:    len(m.BadRows),
		Duplicates: m.Duplicates,
		Labels:     m.Labels,
	}, nil
}
