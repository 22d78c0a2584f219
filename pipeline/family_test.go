package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/internal/testmodel"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/spec"
)

// TestTrainAdapterEveryFamily runs the training step on a folder of each
// decoder family: PEFT's default target_modules for the model type (phi3
// has none in PEFT, so its spec must name them), PEFT keys in the saved
// adapter, and the adapter fits the base.
func TestTrainAdapterEveryFamily(t *testing.T) {
	for _, mt := range []string{"mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3"} {
		t.Run(mt, func(t *testing.T) {
			dir := t.TempDir()
			corpus := testmodel.Corpus(40)
			base := filepath.Join(dir, "base")
			if err := testmodel.Family(base, mt, corpus, 300, 1); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(dir, "data.jsonl")
			if err := testmodel.WriteTextJSONL(data, corpus); err != nil {
				t.Fatal(err)
			}
			snap, err := dataset.Prepare([]string{data}, dataset.Options{Format: "text", ValidationFraction: 0.1, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			snapDir := filepath.Join(dir, "snap")
			os.MkdirAll(snapDir, 0o755)
			if err := snap.Write(snapDir); err != nil {
				t.Fatal(err)
			}
			doc := "name: fam\nbase_model: base\ndataset: {files: [data.jsonl], format: text}\nlora: {r: 2}\ntraining: {steps: 2, batch_size: 2, seq_len: 32, seed: 1}\n"
			sp, err := spec.Parse([]byte(doc), "fam.yaml")
			if err != nil {
				t.Fatal(err)
			}
			sp.BaseModel = base
			out := filepath.Join(dir, "adapter")
			os.MkdirAll(out, 0o755)
			_, err = TrainAdapter(context.Background(), *sp, snapDir, out, filepath.Join(dir, "ck"), nil)
			if mt == "phi3" {
				if ie, ok := lora.IsInputError(err); !ok || ie.Kind != lora.KindBadConfig || !strings.Contains(err.Error(), "target_modules") {
					t.Fatalf("phi3 without target_modules: %v", err)
				}
				sp.LoRA.TargetModules = spec.Targets("qkv_proj", "gate_up_proj")
				_, err = TrainAdapter(context.Background(), *sp, snapDir, out, filepath.Join(dir, "ck2"), nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			a, err := peft.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{".self_attn.q_proj", ".self_attn.v_proj"}
			if mt == "phi3" {
				want = []string{".self_attn.qkv_proj", ".mlp.gate_up_proj"}
			}
			mods := a.Modules()
			if len(mods) != 4 {
				t.Fatalf("adapted modules %v", mods)
			}
			for _, m := range mods {
				if !strings.HasPrefix(m, "model.layers.") || (!strings.HasSuffix(m, want[0]) && !strings.HasSuffix(m, want[1])) {
					t.Fatalf("module %q is not one of PEFT's defaults %v", m, want)
				}
			}
			if err := CheckAdapterFitsBase(out, base); err != nil {
				t.Fatal(err)
			}
		})
	}
}
