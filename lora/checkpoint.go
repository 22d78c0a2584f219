package lora

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/loraflow/loraflow/internal/safeio"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// Checkpoint layout inside TrainConfig.CheckpointDir:
//
//	LATEST                     name of the newest complete checkpoint folder
//	step-000040/state.safetensors   trainable tensors ("param/<key>") and AdamW
//	                           moments ("adam_m/<key>", "adam_v/<key>"); the
//	                           run state as JSON in metadata "loraflow.state"
//	step-000040/adapter/       the PEFT adapter at that step (LoRA runs)
//
// A checkpoint folder is written under a temporary name and renamed; LATEST
// is replaced atomically afterwards, then older folders are removed.
const (
	latestFile   = "LATEST"
	stateFile    = "state.safetensors"
	stateMetaKey = "loraflow.state"
)

// trainState is the part of a run's state that is not a tensor. The data
// order and the dropout random streams are functions of (seed, step), so the
// step and the number of samples consumed restore them exactly.
type trainState struct {
	Step         int       `json:"step"`
	TotalSteps   int       `json:"total_steps"`
	Seed         int64     `json:"seed"`
	SamplesSeen  int       `json:"samples_seen"`
	RNG          string    `json:"rng"`
	Tokens       int64     `json:"tokens"`
	Losses       []float64 `json:"losses"`
	Fingerprint  string    `json:"fingerprint"`
	FullFineTune bool      `json:"full_fine_tune"`
	// TrainSeconds is the training time of the attempts that led to this
	// checkpoint, so that a resumed run reports throughput over the whole
	// run. 0 in checkpoints written before it was recorded.
	TrainSeconds float64 `json:"train_seconds,omitempty"`
	// Numerics names the BLAS backend and the thread split the steps so
	// far ran with (numericsFingerprint); empty in older checkpoints.
	Numerics string `json:"numerics,omitempty"`
}

// check refuses run state that cannot belong to a run of total steps.
func (st trainState) check(total int) error {
	switch {
	case st.Step < 1 || st.Step > total || st.TotalSteps != total:
		return fmt.Errorf("step %d of %d, but this run has %d steps", st.Step, st.TotalSteps, total)
	case len(st.Losses) != st.Step:
		return fmt.Errorf("%d losses for %d steps", len(st.Losses), st.Step)
	case st.Tokens < 0 || st.SamplesSeen < 0:
		return fmt.Errorf("negative counts (tokens %d, samples %d)", st.Tokens, st.SamplesSeen)
	case st.TrainSeconds < 0 || math.IsNaN(st.TrainSeconds) || math.IsInf(st.TrainSeconds, 0):
		return fmt.Errorf("train_seconds %v", st.TrainSeconds)
	}
	return nil
}

func (t *trainRun[T]) saveCheckpoint() (string, error) {
	root := t.tc.CheckpointDir
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("lora: checkpoint: %w", err)
	}
	name := fmt.Sprintf("step-%06d", t.step)
	final := filepath.Join(root, name)
	tmp, err := os.MkdirTemp(root, "."+name+".tmp")
	if err != nil {
		return "", fmt.Errorf("lora: checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	st := trainState{Step: t.step, TotalSteps: t.total, Seed: t.tc.Seed,
		SamplesSeen: t.step * t.tc.GradAccumSteps * t.tc.BatchSize,
		RNG:         fmt.Sprintf("pcg(seed=%d, stream=step·2^16+microbatch) for dropout; pcg(seed=%d, epoch+1) permutation for data order", t.tc.Seed, t.tc.Seed),
		Tokens:      t.tokens, Losses: t.losses, Fingerprint: t.fingerprint, FullFineTune: t.tc.FullFineTune,
		TrainSeconds: t.trainSeconds(), Numerics: numericsFingerprint()}
	meta, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("lora: checkpoint: %w", err)
	}
	var ts []safetensors.Tensor
	add := func(name string, shape []int, v []T) error {
		b, err := safetensors.EncodeFloat32(safetensors.DType("F32"), toFloat32(v))
		if err != nil {
			return err
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.DType("F32"), Shape: shape, Data: b})
		return nil
	}
	for i, x := range t.tr {
		for _, e := range []struct {
			prefix string
			v      []T
		}{{"param/", x.p.w}, {"adam_m/", t.opt.m[i]}, {"adam_v/", t.opt.v[i]}} {
			if err := add(e.prefix+x.key, x.p.shape, e.v); err != nil {
				return "", fmt.Errorf("lora: checkpoint %s: %w", x.key, err)
			}
		}
	}
	if err := safetensors.WriteFile(filepath.Join(tmp, stateFile), ts, map[string]string{stateMetaKey: string(meta), "format": "pt"}); err != nil {
		return "", fmt.Errorf("lora: checkpoint: %w", err)
	}
	if t.peftCfg != nil {
		a, err := exportTrained(context.Background(), t.n, *t.peftCfg, t.tr)
		if err != nil {
			return "", fmt.Errorf("lora: checkpoint: %w", err)
		}
		if err := a.Save(filepath.Join(tmp, "adapter")); err != nil {
			return "", fmt.Errorf("lora: checkpoint: %w", err)
		}
	}
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	if err := os.RemoveAll(final); err != nil {
		return "", fmt.Errorf("lora: checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("lora: checkpoint: %w", err)
	}
	// The folder's rename is durable before LATEST names it.
	if err := syncDir(root); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(root, latestFile), []byte(name+"\n")); err != nil {
		return "", err
	}
	_ = syncDir(root)
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "step-") && e.Name() != name {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
	t.lastGood = final
	return final, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	defer f.Close()
	_ = f.Sync()
	return nil
}

// LatestCheckpoint returns the newest complete checkpoint folder in dir, or
// "" when there is none. It is the folder LATEST names when that folder
// holds a readable state file; otherwise (LATEST missing, unreadable, or
// naming a folder that is gone or damaged, as two writers sharing a folder
// once left it) it is the newest step-NNNNNN folder whose state file opens,
// with a warning, so a resume loses at most the steps since that checkpoint
// instead of failing the run.
func LatestCheckpoint(dir string) (string, error) {
	b, err := safeio.ReadFile(filepath.Join(dir, latestFile), maxStateBytes)
	var why string
	switch {
	case errors.Is(err, os.ErrNotExist):
		why = "" // no LATEST: a first run, or a crash before the first one was written
	case err != nil:
		why = err.Error()
	default:
		name := strings.TrimSpace(string(b))
		path := filepath.Join(dir, name)
		switch {
		case !checkpointName.MatchString(name):
			why = fmt.Sprintf("LATEST names %q, not a step-NNNNNN folder", name)
		default:
			if err := intactCheckpoint(path); err != nil {
				why = fmt.Sprintf("LATEST names %s, which is not an intact checkpoint: %v", name, err)
			} else {
				return path, nil
			}
		}
	}
	found, err := newestIntactCheckpoint(dir)
	if err != nil {
		return "", err
	}
	if why != "" {
		slog.Warn("lora: resuming from the newest intact checkpoint instead of the one LATEST names",
			"checkpoint_dir", dir, "reason", why, "using", found)
	}
	return found, nil
}

var checkpointName = regexp.MustCompile(`^step-[0-9]{6,}$`)

// intactCheckpoint reports why the checkpoint folder path cannot be resumed
// from (nil when its state file opens and carries the run state).
func intactCheckpoint(path string) error {
	f, err := safetensors.Open(filepath.Join(path, stateFile))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, ok := f.Metadata()[stateMetaKey]; !ok {
		return fmt.Errorf("%s has no run state", stateFile)
	}
	return nil
}

// newestIntactCheckpoint is the step-NNNNNN folder of dir with the highest
// step whose state file is intact; "" when there is none.
func newestIntactCheckpoint(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lora: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && checkpointName.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool { // by step, newest first
		a, b := names[i], names[j]
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a > b
	})
	for _, n := range names {
		if intactCheckpoint(filepath.Join(dir, n)) == nil {
			return filepath.Join(dir, n), nil
		}
	}
	return "", nil
}

// resume loads the latest checkpoint, if any.
func (t *trainRun[T]) resume() (bool, error) {
	dir, err := LatestCheckpoint(t.tc.CheckpointDir)
	if err != nil || dir == "" {
		return false, err
	}
	path := filepath.Join(dir, stateFile)
	f, err := safetensors.Open(path)
	if err != nil {
		return false, &InputError{Kind: KindCorruptCheckpoint, Msg: "open " + path, Err: err}
	}
	defer f.Close()
	var st trainState
	if err := json.Unmarshal([]byte(f.Metadata()[stateMetaKey]), &st); err != nil {
		return false, &InputError{Kind: KindCorruptCheckpoint, Msg: path + ": run state", Err: err}
	}
	if st.Fingerprint != t.fingerprint {
		return false, inputErr(KindCorruptCheckpoint, "%s belongs to a different run (model, adapter config, training config or data differ); use another CheckpointDir", dir)
	}
	if err := st.check(t.total); err != nil {
		return false, &InputError{Kind: KindCorruptCheckpoint, Msg: path + ": run state", Err: err}
	}
	if now := numericsFingerprint(); st.Numerics != now {
		// Allowed, not refused: refusing would throw away the steps done on
		// another worker. The run stays correct; only the bit-identity with
		// an uninterrupted run is lost (docs/reliability.md).
		slog.Warn("lora: resuming a checkpoint written with another BLAS backend or thread split; the adapter will not be bit-identical to an uninterrupted run",
			"checkpoint", dir, "checkpoint_numerics", st.Numerics, "this_process", now)
	}
	want := map[string]bool{}
	for i, x := range t.tr {
		for _, e := range []struct {
			prefix string
			dst    []T
		}{{"param/", x.p.w}, {"adam_m/", t.opt.m[i]}, {"adam_v/", t.opt.v[i]}} {
			name := e.prefix + x.key
			want[name] = true
			info, ok := f.Info(name)
			if !ok {
				return false, inputErr(KindCorruptCheckpoint, "%s: tensor %q is missing", path, name)
			}
			if !equalShape(info.Shape, x.p.shape) {
				return false, inputErr(KindCorruptCheckpoint, "%s: tensor %q has shape %v, want %v", path, name, info.Shape, x.p.shape)
			}
			v, err := f.Float32(name)
			if err != nil {
				return false, &InputError{Kind: KindCorruptCheckpoint, Msg: path, Err: err}
			}
			for j, y := range v {
				e.dst[j] = T(y)
			}
		}
	}
	var extra []string
	for _, n := range f.Names() {
		if !want[n] {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return false, inputErr(KindCorruptCheckpoint, "%s: unexpected tensors %q", path, extra)
	}
	t.step, t.tokens, t.losses, t.lastGood = st.Step, st.Tokens, st.Losses, dir
	t.priorSeconds = st.TrainSeconds
	return true, nil
}
