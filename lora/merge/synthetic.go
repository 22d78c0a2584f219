package merge

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// SyntheticCheckpoint writes a Llama-layout checkpoint of about totalBytes
// of random dtype tensors into dir (hidden size 1024, intermediate 2816, as
// many layers as fit), sharded into files of at most shardBytes (0 = one
// file), with config.json, and returns a rank-r adapter for q_proj and
// v_proj of every layer, or with allLinear for all seven linear layers of
// every layer (the worst case for a merge: most bytes are recomputed). It is for benchmarks and smoke tests of merging
// large checkpoints; the values are not a trained model.
func SyntheticCheckpoint(dir string, totalBytes, shardBytes int64, dt safetensors.DType, r int, allLinear bool, seed uint64) (*peft.Adapter, error) {
	const hidden, inter, vocab = 1024, 2816, 8192
	es := int64(dt.Size())
	layerBytes := es * int64(4*hidden*hidden+3*hidden*inter+2*hidden)
	layers := int(max(1, (totalBytes-es*int64(2*vocab*hidden))/layerBytes))
	type spec struct {
		name  string
		shape []int
	}
	specs := []spec{{"model.embed_tokens.weight", []int{vocab, hidden}}}
	for i := 0; i < layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		specs = append(specs,
			spec{p + "input_layernorm.weight", []int{hidden}},
			spec{p + "self_attn.q_proj.weight", []int{hidden, hidden}},
			spec{p + "self_attn.k_proj.weight", []int{hidden, hidden}},
			spec{p + "self_attn.v_proj.weight", []int{hidden, hidden}},
			spec{p + "self_attn.o_proj.weight", []int{hidden, hidden}},
			spec{p + "post_attention_layernorm.weight", []int{hidden}},
			spec{p + "mlp.gate_proj.weight", []int{inter, hidden}},
			spec{p + "mlp.up_proj.weight", []int{inter, hidden}},
			spec{p + "mlp.down_proj.weight", []int{hidden, inter}},
		)
	}
	specs = append(specs, spec{"model.norm.weight", []int{hidden}}, spec{"lm_head.weight", []int{vocab, hidden}})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	// Group tensors into shards.
	var shards [][]spec
	var cur []spec
	var curBytes int64
	for _, s := range specs {
		n := es * int64(numElements(s.shape))
		if shardBytes > 0 && curBytes > 0 && curBytes+n > shardBytes {
			shards = append(shards, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, s)
		curBytes += n
	}
	shards = append(shards, cur)
	weightMap := map[string]string{}
	var total int64
	for i, group := range shards {
		name := safetensors.SingleFileName
		if len(shards) > 1 {
			name = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		}
		infos := make([]safetensors.TensorInfo, len(group))
		for j, s := range group {
			infos[j] = safetensors.TensorInfo{Name: s.name, DType: dt, Shape: s.shape}
			weightMap[s.name] = name
		}
		w, err := safetensors.NewWriter(filepath.Join(dir, name), infos, map[string]string{"format": "pt"})
		if err != nil {
			return nil, err
		}
		for _, s := range group {
			v := make([]float32, numElements(s.shape))
			for k := range v {
				// Uniform in [-0.035, 0.035): std 0.02, cheap to draw.
				v[k] = (float32(rng.Uint32()>>8)/(1<<24) - 0.5) * 0.07
			}
			total += es * int64(len(v))
			if err := w.WriteFloat32(s.name, v); err != nil {
				w.Abort()
				return nil, err
			}
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	if len(shards) > 1 {
		idx, _ := json.MarshalIndent(safetensors.Index{Metadata: map[string]any{"total_size": total}, WeightMap: weightMap}, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, safetensors.IndexFileName), idx, 0o644); err != nil {
			return nil, err
		}
	}
	cfg := fmt.Sprintf(`{"model_type": "llama", "hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": %d, "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": %d, "torch_dtype": %q}`,
		hidden, inter, layers, vocab, map[safetensors.DType]string{safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16"}[dt])
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}

	targets := map[string][2]int{"self_attn.q_proj": {hidden, hidden}, "self_attn.v_proj": {hidden, hidden}}
	if allLinear {
		targets["self_attn.k_proj"] = [2]int{hidden, hidden}
		targets["self_attn.o_proj"] = [2]int{hidden, hidden}
		targets["mlp.gate_proj"] = [2]int{hidden, inter}
		targets["mlp.up_proj"] = [2]int{hidden, inter}
		targets["mlp.down_proj"] = [2]int{inter, hidden}
	}
	pc := peft.DefaultConfig("q_proj", "v_proj")
	if allLinear {
		pc.TargetModules = peft.TargetModules{AllLinear: true}
	}
	pc.R, pc.LoraAlpha = r, float64(2*r)
	a := &peft.Adapter{Config: pc, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for i := 0; i < layers; i++ {
		for m, io := range targets {
			mod := fmt.Sprintf("model.layers.%d.%s", i, m)
			in, out := io[0], io[1]
			av, bv := make([]float32, r*in), make([]float32, out*r)
			for k := range av {
				av[k] = float32(rng.NormFloat64() * 0.01)
			}
			for k := range bv {
				bv[k] = float32(rng.NormFloat64() * 0.01)
			}
			a.Tensors[peft.KeyA(mod)], a.Shapes[peft.KeyA(mod)] = av, []int{r, in}
			a.Tensors[peft.KeyB(mod)], a.Shapes[peft.KeyB(mod)] = bv, []int{out, r}
		}
	}
	return a, nil
}

func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
