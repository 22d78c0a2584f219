package activities

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/loraflow/loraflow/lora"
)

// TestTrainLoRAWaitsForTheWorkFolderHolder: while another holder has the
// work folder (an attempt still running on a worker cut off from Temporal),
// TrainLoRA fails with a retryable WorkDirLocked naming the holder, and
// succeeds once it is released.
func TestTrainLoRAWaitsForTheWorkFolderHolder(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	in := TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel}
	held, err := w.acts.Store.LockWorkDir("train", trainKey(in), "the cut-off attempt")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.env().ExecuteActivity(w.acts.TrainLoRA, in)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrWorkDirLocked || appErr.NonRetryable() || !strings.Contains(err.Error(), "the cut-off attempt") {
		t.Fatalf("err = %v, want a retryable %s naming the holder", err, ErrWorkDirLocked)
	}
	if _, err := os.Stat(filepath.Join(held.Dir, "checkpoints")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the second writer touched the checkpoints (err %v)", err)
	}
	held.Unlock()
	if _, err := w.env().ExecuteActivity(w.acts.TrainLoRA, in); err != nil {
		t.Fatal(err)
	}
}

// TestTwoIdenticalTrainingsNeverShareCheckpoints: two TrainLoRA calls with
// the same inputs at once: each either trains alone or is told to wait;
// retried, every one returns the same adapter, and LATEST names a
// checkpoint that exists.
func TestTwoIdenticalTrainingsNeverShareCheckpoints(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	in := TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel}
	const writers = 3
	outs := make([]TrainOutput, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				v, err := w.env().ExecuteActivity(w.acts.TrainLoRA, in)
				if err == nil {
					_ = v.Get(&outs[i])
					return
				}
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) || appErr.Type() != ErrWorkDirLocked {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				time.Sleep(10 * time.Millisecond) // the retry backoff, shortened
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := 1; i < writers; i++ {
		if outs[i].Adapter != outs[0].Adapter || outs[0].Adapter.SHA256 == "" {
			t.Fatalf("writers got different adapters: %+v", outs)
		}
	}
	work, _ := w.acts.Store.WorkDir("train", trainKey(in))
	ck, err := lora.LatestCheckpoint(filepath.Join(work, "checkpoints"))
	if err != nil || ck == "" {
		t.Fatalf("LATEST: %q, %v", ck, err)
	}
	if _, err := os.Stat(ck); err != nil {
		t.Fatalf("LATEST names a missing checkpoint: %v", err)
	}
}
