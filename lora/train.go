package lora

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/loraflow/loraflow/lora/peft"
)

// TrainConfig sets up a training run. Zero values take the defaults noted.
type TrainConfig struct {
	Steps          int // optimizer steps; 0: Epochs passes over the data
	Epochs         int // 0: 1 (used when Steps is 0)
	BatchSize      int // sequences per micro-batch; 0: 8
	SeqLen         int // longer sequences are truncated; 0: the model's max positions
	GradAccumSteps int // micro-batches per optimizer step; 0: 1
	WarmupSteps    int

	LearningRate    float64 // 0: 2e-4
	WeightDecay     float64 // decoupled (AdamW), on matrices only
	MaxGradNorm     float64 // global-norm clipping; 0: 1.0; negative: off
	LoraPlusLRRatio float64 // LoRA+: B's learning rate is this times A's; 0: 1

	Schedule string // "constant" | "linear" | "cosine"; "": "linear"
	Seed     int64

	CheckpointDir   string // atomic checkpoints; Train resumes from the latest one found here
	CheckpointEvery int    // steps between checkpoints; 0: only at the end (when CheckpointDir is set)

	// GradientCheckpointing keeps only each block's input during the forward
	// pass and replays the block before its backward pass: much less
	// activation memory for about one more forward pass of compute. The
	// results are bit-identical to a run without it.
	GradientCheckpointing bool

	// FullFineTune trains every weight of the model instead of an adapter.
	// The model's weights are updated in place and Train returns a nil
	// adapter; write the result with (*Model).Save.
	FullFineTune bool
}

// Progress is reported after every optimizer step.
type Progress struct {
	Step, TotalSteps int
	Loss             float64
	LearningRate     float64
	GradNorm         float64
	TokensPerSec     float64
	Checkpoint       string // set when this step wrote a checkpoint (its folder)
}

// TrainResult summarises a finished run.
type TrainResult struct {
	Steps           int
	Tokens          int64 // tokens processed over the whole run (resumed parts included)
	FinalLoss       float64
	Losses          []float64 // per step, from step 1
	TokensPerSec    float64   // over the whole run: Tokens / training time of every attempt that reached the result
	ResumedFromStep int
	TrainableParams int
}

func (tc TrainConfig) withDefaults(m ModelConfig) TrainConfig {
	if tc.BatchSize <= 0 {
		tc.BatchSize = 8
	}
	if tc.GradAccumSteps <= 0 {
		tc.GradAccumSteps = 1
	}
	if tc.SeqLen <= 0 || tc.SeqLen > m.MaxPositions {
		tc.SeqLen = m.MaxPositions
	}
	if tc.LearningRate == 0 {
		tc.LearningRate = 2e-4
	}
	if tc.MaxGradNorm == 0 {
		tc.MaxGradNorm = 1
	}
	if tc.Schedule == "" {
		tc.Schedule = "linear"
	}
	if tc.Epochs <= 0 {
		tc.Epochs = 1
	}
	return tc
}

func (tc TrainConfig) totalSteps(nData int) int {
	if tc.Steps > 0 {
		return tc.Steps
	}
	per := tc.BatchSize * tc.GradAccumSteps
	return tc.Epochs * ((nData + per - 1) / per)
}

func checkData(m ModelConfig, data []Sequence) error {
	if len(data) == 0 {
		return inputErr(KindBadData, "no sequences")
	}
	targets := 0
	for i, s := range data {
		for j, t := range s.Tokens {
			if t < 0 || t >= m.VocabSize {
				return inputErr(KindBadData, "sequence %d: token %d at position %d is outside the vocabulary [0,%d)", i, t, j, m.VocabSize)
			}
		}
		if s.PromptLen < 0 || s.PromptLen > len(s.Tokens) {
			return inputErr(KindBadData, "sequence %d: PromptLen %d outside [0,%d]", i, s.PromptLen, len(s.Tokens))
		}
		if s.Loss != nil && len(s.Loss) != len(s.Tokens) {
			return inputErr(KindBadData, "sequence %d: %d loss flags for %d tokens", i, len(s.Loss), len(s.Tokens))
		}
		if len(s.Tokens) >= 2 && s.PromptLen < len(s.Tokens) && (s.Loss == nil || slices.Contains(s.Loss[max(s.PromptLen, 1):], true)) {
			targets++
		}
	}
	if targets == 0 {
		return inputErr(KindBadData, "none of the %d sequences has a token to predict (each needs 2+ tokens and a response after PromptLen)", len(data))
	}
	return nil
}

// dataOrder gives the sequences of each optimizer step: epoch e visits the
// data in a permutation seeded by (seed, e).
type dataOrder struct {
	n     int
	seed  int64
	epoch int
	perm  []int
}

func (o *dataOrder) at(g int) int {
	e := g / o.n
	if o.perm == nil || e != o.epoch {
		o.epoch = e
		o.perm = rand.New(rand.NewPCG(uint64(o.seed), uint64(e)+1)).Perm(o.n)
	}
	return o.perm[g%o.n]
}

// Train trains a LoRA adapter (or, with tc.FullFineTune, the whole model) on
// data. It resumes from tc.CheckpointDir when a checkpoint is there and
// reports progress after every step.
func Train(ctx context.Context, m *Model, cfg peft.Config, tc TrainConfig, data []Sequence, progress func(Progress)) (*peft.Adapter, TrainResult, error) {
	if err := checkData(m.cfg, data); err != nil {
		return nil, TrainResult{}, err
	}
	if err := checkTrainLimits(m.cfg, tc, float64(m.WeightBytes())); err != nil {
		return nil, TrainResult{}, err
	}
	tc = tc.withDefaults(m.cfg)
	switch strings.ToLower(tc.Schedule) {
	case "constant", "linear", "cosine":
	default:
		return nil, TrainResult{}, inputErr(KindBadTrainConfig, "schedule %q is not constant, linear or cosine", tc.Schedule)
	}
	if tc.FullFineTune {
		m.net.widenAll() // trained in place, in float32 (frozen.go)
	}
	n := m.net.clone()
	var tr []trainable[float32]
	if tc.FullFineTune {
		tr = fullTrainables(n)
	} else {
		var err error
		if tr, err = initLoRA(n, cfg, tc.Seed, tc.LoraPlusLRRatio); err != nil {
			return nil, TrainResult{}, err
		}
	}
	n.checkpointing = tc.GradientCheckpointing
	t := newTrainRun(n, tr, tc, data)
	t.fingerprint = runFingerprint(m.cfg, cfg, tc, data)
	if !tc.FullFineTune {
		t.peftCfg = &cfg
	}
	res, err := t.loop(ctx, progress)
	if err != nil {
		return nil, res, err
	}
	if tc.FullFineTune {
		return nil, res, nil
	}
	a, err := exportTrained(ctx, n, cfg, tr)
	if err != nil {
		return nil, res, err
	}
	return a, res, nil
}

// trainRun is the state of one training run.
type trainRun[T float] struct {
	n           *net[T]
	tr          []trainable[T]
	opt         *optimizer[T]
	tc          TrainConfig
	data        []Sequence
	order       dataOrder
	total       int
	lowest      int
	fingerprint string
	peftCfg     *peft.Config

	step     int // optimizer steps done
	tokens   int64
	losses   []float64
	lastGood string // last checkpoint folder

	priorSeconds float64   // training time before this process (from the checkpoint resumed)
	runStart     time.Time // when this process's training loop began
}

// trainSeconds is the training time of the whole run so far: the attempts
// before the checkpoint resumed, and this one.
func (t *trainRun[T]) trainSeconds() float64 {
	return t.priorSeconds + time.Since(t.runStart).Seconds()
}

// throughput is tokens per second over the whole run (resumed parts
// included). A checkpoint that recorded no training time (written before
// it was recorded) leaves only this process's tokens and time to go by.
func (t *trainRun[T]) throughput(resumed bool, runTokens int64) float64 {
	secs, tokens := t.trainSeconds(), t.tokens
	if resumed && t.priorSeconds == 0 {
		secs, tokens = time.Since(t.runStart).Seconds(), runTokens
	}
	if secs <= 0 {
		return 0
	}
	return float64(tokens) / secs
}

func newTrainRun[T float](n *net[T], tr []trainable[T], tc TrainConfig, data []Sequence) *trainRun[T] {
	t := &trainRun[T]{n: n, tr: tr, opt: newOptimizer(tr), tc: tc, data: data,
		order: dataOrder{n: len(data), seed: tc.Seed, epoch: -1}, total: tc.totalSteps(len(data))}
	t.lowest = n.cfg.Layers
	for _, x := range tr {
		t.lowest = min(t.lowest, layerOfParam(x.p.name, n.cfg))
	}
	return t
}

// layerOfParam is the block a parameter belongs to: −1 for embeddings,
// Layers for the final norm and head.
func layerOfParam(name string, c ModelConfig) int {
	if strings.Contains(name, "embed_tokens") || strings.Contains(name, "wte.") || strings.Contains(name, "wpe.") {
		return -1
	}
	if i, ok := (peft.Config{}).LayerIndex(name); ok {
		return i
	}
	return c.Layers
}

// microBatches returns the batches of optimizer step s (0-based).
func (t *trainRun[T]) microBatches(s int) []batch {
	B := t.tc.BatchSize
	var out []batch
	for mb := 0; mb < t.tc.GradAccumSteps; mb++ {
		seqs := make([]Sequence, B)
		for j := 0; j < B; j++ {
			g := (s*t.tc.GradAccumSteps+mb)*B + j
			seqs[j] = t.data[t.order.at(g)]
		}
		out = append(out, makeBatch(seqs, t.tc.SeqLen))
	}
	return out
}

// dropoutSeed seeds the dropout of micro-batch mb of step s.
func (t *trainRun[T]) dropoutSeed(s, mb int) *dropoutSeed {
	return &dropoutSeed{hi: uint64(t.tc.Seed) ^ 0xd409_0a7, lo: uint64(s)<<16 | uint64(mb)}
}

// lossAndGrad computes the mean loss of step s over its targets and leaves
// the gradients in the parameters.
func (t *trainRun[T]) lossAndGrad(s int) (loss float64, tokens int64) {
	t.opt.zeroGrad()
	bs := t.microBatches(s)
	count := 0
	for _, b := range bs {
		count += b.countTargets()
		for _, l := range b.lengths {
			tokens += int64(l)
		}
	}
	if count == 0 {
		return 0, tokens
	}
	var sum float64
	for mb, b := range bs {
		if b.countTargets() == 0 {
			continue
		}
		r := t.n.run(b, true, 1/float64(count), t.dropoutSeed(s, mb), t.lowest)
		sum += r.lossSum
	}
	return sum / float64(count), tokens
}

func (t *trainRun[T]) loop(ctx context.Context, progress func(Progress)) (TrainResult, error) {
	res := TrainResult{}
	for _, x := range t.tr {
		res.TrainableParams += len(x.p.w)
	}
	if t.tc.CheckpointDir != "" {
		ok, err := t.resume()
		if err != nil {
			return res, err
		}
		if ok {
			res.ResumedFromStep = t.step
		}
	}
	t.runStart = time.Now()
	resumed := res.ResumedFromStep > 0
	var runTokens int64
	for t.step < t.total {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("lora: training stopped at step %d: %w", t.step, err)
		}
		s := t.step
		loss, toks := t.lossAndGrad(s)
		norm := t.opt.clip(t.tc.MaxGradNorm)
		if math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(norm) || math.IsInf(norm, 0) {
			last := t.lastGood
			if last == "" {
				last = "none"
			}
			return res, inputErr(KindNonFiniteLoss, "loss %v (gradient norm %v) at step %d; parameters left at step %d; last good checkpoint: %s", loss, norm, s+1, s, last)
		}
		lr := learningRate(t.tc.Schedule, t.tc.LearningRate, s, t.tc.WarmupSteps, t.total)
		t.opt.step(s+1, lr, t.tc.WeightDecay)
		t.step++
		t.tokens += toks
		runTokens += toks
		t.losses = append(t.losses, loss)
		p := Progress{Step: t.step, TotalSteps: t.total, Loss: loss, LearningRate: lr, GradNorm: norm}
		p.TokensPerSec = t.throughput(resumed, runTokens)
		if t.tc.CheckpointDir != "" && ((t.tc.CheckpointEvery > 0 && t.step%t.tc.CheckpointEvery == 0) || t.step == t.total) {
			dir, err := t.saveCheckpoint()
			if err != nil {
				return res, err
			}
			p.Checkpoint = dir
		}
		if progress != nil {
			progress(p)
		}
	}
	res.Steps = t.step
	res.Tokens = t.tokens
	res.Losses = append([]float64(nil), t.losses...)
	if len(t.losses) > 0 {
		res.FinalLoss = t.losses[len(t.losses)-1]
	}
	res.TokensPerSec = t.throughput(resumed, runTokens)
	return res, nil
}

// runFingerprint identifies what a checkpoint belongs to: the model shape,
// the adapter and training configuration and the data.
func runFingerprint(mc ModelConfig, pc peft.Config, tc TrainConfig, data []Sequence) string {
	h := sha256.New()
	tc.CheckpointDir, tc.CheckpointEvery = "", 0
	for _, v := range []any{mc, pc, tc} {
		b, _ := json.Marshal(v)
		h.Write(b)
		h.Write([]byte{0})
	}
	var buf [8]byte
	for _, s := range data {
		binary.LittleEndian.PutUint64(buf[:], uint64(s.PromptLen))
		h.Write(buf[:])
		binary.LittleEndian.PutUint64(buf[:], uint64(len(s.Tokens)))
		h.Write(buf[:])
		for _, tok := range s.Tokens {
			binary.LittleEndian.PutUint32(buf[:4], uint32(tok))
			h.Write(buf[:4])
		}
		if s.Loss != nil { // absent before loss masks: old fingerprints unchanged
			h.Write([]byte("loss"))
			for _, l := range s.Loss {
				h.Write([]byte{btoiByte(l)})
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func btoiByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
