package registry

import (
	"context"
	"testing"

	"github.com/loraflow/loraflow/registry/mlflowtest"
)

// TestMLflowPublishNeedsNoTruncation: loraflow's publish works the same on a
// server that truncates long param and run tag values
// (MLFLOW_TRUNCATE_LONG_VALUES, MLflow's default) and on one that refuses
// them, because it never sends a value the server would cut: what a
// truncating server stores is what loraflow sent, so the digest tags a
// retried publish searches by are intact.
func TestMLflowPublishNeedsNoTruncation(t *testing.T) {
	for _, truncate := range []bool{true, false} {
		srv := mlflowtest.NewServer(t)
		srv.TruncateLongValues = truncate
		m := newTestMLflow(t, srv, nil)
		for range 2 {
			if _, err := m.Publish(context.Background(), samplePublish(t, "m", "sha256:same")); err != nil {
				t.Fatalf("truncate=%v: %v", truncate, err)
			}
		}
		if cut := srv.Truncated(); len(cut) != 0 {
			t.Errorf("truncate=%v: the server cut %v", truncate, cut)
		}
		if n := len(srv.Versions("m")); n != 1 {
			t.Errorf("truncate=%v: %d versions, want 1", truncate, n)
		}
	}
}
