package provenance

import (
	"strings"
	"testing"
)

func TestWorkerDescriptor(t *testing.T) {
	w := CurrentWorker()
	if w.Module == "" || w.GoVersion == "" || len(w.SHA256) != 64 {
		t.Fatalf("current worker %+v", w)
	}
	rev := strings.Repeat("0123456789", 4)
	d := WorkerBinary{Module: "github.com/loraflow/loraflow", Version: "v0.1.0", Revision: rev, Modified: true, SHA256: w.SHA256}.descriptor()
	if d.URI != "pkg:golang/github.com/loraflow/loraflow@v0.1.0" || d.Digest["gitCommit"] != rev || d.Digest["sha256"] != w.SHA256 {
		t.Fatalf("descriptor %+v", d)
	}
	if d.Annotations["vcs.revision"] != rev || d.Annotations["vcs.modified"] != true || d.Annotations["role"] != "worker" {
		t.Fatalf("annotations %+v", d.Annotations)
	}
	// A short stamped revision is kept as an annotation, not as a gitCommit
	// digest (which must be 40 or 64 hex digits).
	d = WorkerBinary{Module: "m", Version: "v1", Revision: "abc123"}.descriptor()
	if _, ok := d.Digest["gitCommit"]; ok || d.Annotations["vcs.revision"] != "abc123" {
		t.Fatalf("short revision %+v", d)
	}
}
