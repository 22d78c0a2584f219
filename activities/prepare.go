package activities

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
// snapshot artifact, and fingerprints the base model folder.
func (a *Activities) PrepareData(ctx context.Context, in PrepareDataInput) (PrepareDataOutput, error) {
	s := in.Spec
	if err := a.checkSpec("PrepareData", s); err != nil {
		return PrepareDataOutput{}, err
	}
	if st, err := os.Stat(s.BaseModel); err != nil || !st.IsDir() {
		return PrepareDataOutput{}, nonRetryable(ErrBadSpec, fmt.Errorf("PrepareData: base model folder %q: not found", s.BaseModel))
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
			return PrepareDataOutput{}, classify("PrepareData", err)
		case errors.Is(err, fs.ErrNotExist):
			return PrepareDataOutput{}, nonRetryable(ErrBadSpec, fmt.Errorf("PrepareData: %w", err))
		case errors.Is(err, dataset.ErrInvalid): // retrying cannot help
			return PrepareDataOutput{}, nonRetryable(ErrBadData, fmt.Errorf("PrepareData: %w", err))
		default: // I/O on the data volume: may be transient
			return PrepareDataOutput{}, fmt.Errorf("PrepareData: %w", err)
		}
	}
	for _, b := range snap.Manifest.BadRows {
		a.logger().Warn("skipped bad row", "file", b.File, "line", b.Line, "reason", b.Reason)
	}
	dir, err := a.Store.ScratchDir("snapshot")
	if err != nil {
		return PrepareDataOutput{}, err
	}
	defer os.RemoveAll(dir) // a no-op once committed (moved into the store)
	if err := snap.Write(dir); err != nil {
		return PrepareDataOutput{}, fmt.Errorf("PrepareData: %w", err)
	}
	ref, err := a.Store.Commit(ctx, dir)
	if err != nil {
		return PrepareDataOutput{}, fmt.Errorf("PrepareData: %w", err)
	}
	baseDigest, err := artifact.DigestDir(ctx, s.BaseModel)
	if err != nil {
		return PrepareDataOutput{}, fmt.Errorf("PrepareData: %w", err)
	}
	m := snap.Manifest
	a.logger().Info("prepared dataset", "snapshot", ref.SHA256, "train", m.Train, "validation", m.Validation, "bad_rows", len(m.BadRows), "duplicates", m.Duplicates)
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
