package provenance

import (
	"context"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"sync"
)

// Revision and Version may be stamped at link time when the build carries
// no VCS information (GOFLAGS=-buildvcs=false, container builds):
//
//	go build -ldflags "-X github.com/loraflow/loraflow/provenance.Revision=$(git rev-parse HEAD) -X github.com/loraflow/loraflow/provenance.Version=v0.3.0" ./cmd/worker
//
// A stamped value wins over the build info.
var (
	Revision string
	Version  string
)

// WorkerBinary identifies the program that produced an artifact; it is
// recorded as a resolved dependency of every provenance statement.
type WorkerBinary struct {
	Module    string // main module path
	Path      string // main package path
	Version   string // module version, "(devel)" for local builds
	Revision  string // VCS revision, when known
	Modified  bool   // built from a modified work tree
	GoVersion string
	SHA256    string // of the executable file, when it can be read
}

var (
	workerOnce sync.Once
	worker     WorkerBinary
)

var hexRevision = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// CurrentWorker describes the running binary, from debug.ReadBuildInfo, the
// stamped Revision and Version, and the executable's sha256. It is computed
// once per process.
func CurrentWorker() WorkerBinary {
	workerOnce.Do(func() {
		worker = WorkerBinary{GoVersion: runtime.Version(), Module: "github.com/loraflow/loraflow", Version: "(devel)"}
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Path != "" {
				worker.Module = bi.Main.Path
			}
			if bi.Main.Version != "" {
				worker.Version = bi.Main.Version
			}
			worker.Path = bi.Path
			if bi.GoVersion != "" {
				worker.GoVersion = bi.GoVersion
			}
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					worker.Revision = s.Value
				case "vcs.modified":
					worker.Modified = s.Value == "true"
				}
			}
		}
		if Revision != "" {
			worker.Revision = Revision
		}
		if Version != "" {
			worker.Version = Version
		}
		if exe, err := os.Executable(); err == nil {
			if fd, err := HashFile(context.Background(), exe); err == nil {
				worker.SHA256 = fd.SHA256
			}
		}
	})
	return worker
}

// descriptor returns the worker as an in-toto resource descriptor.
func (w WorkerBinary) descriptor() resourceDescriptor {
	rd := resourceDescriptor{
		Name:        "loraflow-worker",
		URI:         "pkg:golang/" + w.Module + "@" + w.Version,
		Digest:      map[string]string{},
		Annotations: map[string]any{"role": string(RoleWorker), "goVersion": w.GoVersion},
	}
	if w.SHA256 != "" {
		rd.Digest["sha256"] = w.SHA256
	}
	if hexRevision.MatchString(w.Revision) {
		rd.Digest["gitCommit"] = w.Revision
	}
	if w.Revision != "" {
		rd.Annotations["vcs.revision"] = w.Revision
		rd.Annotations["vcs.modified"] = w.Modified
	}
	if w.Path != "" {
		rd.Annotations["mainPackage"] = w.Path
	}
	if len(rd.Digest) == 0 {
		rd.Digest = nil
	}
	return rd
}
