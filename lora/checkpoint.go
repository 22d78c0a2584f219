package lora

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

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
		TrainSeconds: t.trainSeconds()}
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
// "" when there is none.
func LatestCheckpoint(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, latestFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lora: %w", err)
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, `/\`) {
		return "", inputErr(KindCorruptCheckpoint, "%s: LATEST names %q", dir, name)
	}
	return filepath.Join(dir, name), nil
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
