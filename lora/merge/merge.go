package merge

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/loraflow/loraflow/internal/atomicfile"
	"github.com/loraflow/loraflow/internal/fscopy"
	"github.com/loraflow/loraflow/internal/procfs"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// Options control a merge.
type Options struct {
	// Adapters to merge, each with its weight.
	Adapters []Weighted
	// SafeMerge refuses (ErrNonFinite) a result holding NaN or Inf.
	SafeMerge bool
	// Overwrite replaces an existing output folder; otherwise its existence is an error.
	Overwrite bool
	// BlockElements bounds the elements each worker processes at once
	// (default 1<<19: 5 MB of buffers per worker for a BF16 model).
	BlockElements int
	// Workers is the number of tensors computed at once (default GOMAXPROCS).
	Workers int
	// Logger receives progress (default slog.Default()).
	Logger *slog.Logger
	// Progress, when set, is called after each merged tensor (for heartbeats).
	Progress func(done, total int)
	// NoSync skips the fsync of the output before it is renamed into place
	// (faster; a crash may then leave a folder with unwritten pages).
	NoSync bool
	// Verify, when set, runs on the finished folder before it is moved into
	// place (see EngineVerifier); its error fails the merge and its report
	// goes into Report.Equivalence.
	Verify func(ctx context.Context, dir string) (*EquivalenceReport, error)
	// ReportFile, when set, is the name of a file written inside the output
	// folder with the report as JSON (e.g. "merge_report.json").
	ReportFile string
}

// TensorReport describes one rewritten tensor.
type TensorReport struct {
	Name        string   `json:"name"`
	File        string   `json:"file"`
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	Adapters    []string `json:"adapters,omitempty"`
	ReplacedBy  string   `json:"replaced_by,omitempty"`
	MaxAbsDelta float64  `json:"max_abs_delta"` // max |W' − W0| before rounding to the dtype
}

// FileReport describes one file of the output folder.
type FileReport struct {
	Name     string `json:"name"`
	Bytes    int64  `json:"bytes"`
	Modified bool   `json:"modified"` // some tensor of it was rewritten
}

// Report is the record of a merge or unmerge.
type Report struct {
	Operation        string             `json:"operation"` // "merge" or "unmerge"
	BaseDir          string             `json:"base_dir"`
	OutputDir        string             `json:"output_dir,omitempty"`
	Adapters         []AdapterRef       `json:"adapters"`
	SafeMerge        bool               `json:"safe_merge"`
	Tensors          []TensorReport     `json:"tensors"`
	UntouchedTensors int                `json:"untouched_tensors"`
	Files            []FileReport       `json:"files"`
	BytesCopied      int64              `json:"bytes_copied"`
	BytesRewritten   int64              `json:"bytes_rewritten"`
	CopySeconds      float64            `json:"copy_seconds,omitempty"`
	UpdateSeconds    float64            `json:"update_seconds,omitempty"`
	SyncSeconds      float64            `json:"sync_seconds,omitempty"`
	VerifySeconds    float64            `json:"verify_seconds,omitempty"`
	TotalSeconds     float64            `json:"total_seconds,omitempty"`
	PeakRSSBytes     int64              `json:"peak_rss_bytes,omitempty"` // the process's high-water mark (VmHWM) at the end
	Equivalence      *EquivalenceReport `json:"equivalence,omitempty"`
}

// Stable returns the report without what changes from run to run (the
// output path, timings, memory), so that the copy written inside the
// output folder (Options.ReportFile) keeps the folder's digest reproducible.
func (r Report) Stable() Report {
	r.OutputDir = ""
	r.CopySeconds, r.UpdateSeconds, r.SyncSeconds, r.VerifySeconds, r.TotalSeconds = 0, 0, 0, 0, 0
	r.PeakRSSBytes = 0
	return r
}

// AdapterRef names a merged adapter.
type AdapterRef struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
	R      int     `json:"r"`
	Alpha  float64 `json:"lora_alpha"`
}

// Merge writes to outDir the checkpoint in baseDir with the adapters merged
// in: W' = W0 + Σ wᵢ·sᵢ·Bᵢ·Aᵢ.
func Merge(ctx context.Context, baseDir, outDir string, opts Options) (*Report, error) {
	return run(ctx, "merge", baseDir, outDir, opts, 1)
}

// Unmerge writes to outDir the checkpoint in mergedDir with the adapters
// taken out: W0 = W' − Σ wᵢ·sᵢ·Bᵢ·Aᵢ. For F16/BF16 checkpoints the result
// equals the original base up to rounding (a unit in the last place or two).
func Unmerge(ctx context.Context, mergedDir, outDir string, opts Options) (*Report, error) {
	return run(ctx, "unmerge", mergedDir, outDir, opts, -1)
}

func run(ctx context.Context, op, baseDir, outDir string, opts Options, sign float64) (*Report, error) {
	rep, err := runMerge(ctx, op, baseDir, outDir, opts, sign)
	return rep, asInputError(err)
}

func runMerge(ctx context.Context, op, baseDir, outDir string, opts Options, sign float64) (rep *Report, err error) {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(opts.Adapters) == 0 {
		return nil, fmt.Errorf("%s: no adapters given", op)
	}
	if opts.BlockElements <= 0 {
		opts.BlockElements = 1 << 19
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	absBase, _ := filepath.Abs(baseDir)
	absOut, _ := filepath.Abs(outDir)
	if rel, err := filepath.Rel(absBase, absOut); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s: output folder %s is inside the base folder %s; write elsewhere", op, outDir, baseDir)
	}
	if _, err := os.Stat(outDir); err == nil && !opts.Overwrite {
		return nil, fmt.Errorf("%s: output folder %s already exists (Options.Overwrite, --overwrite on the command line, replaces it)", op, outDir)
	}
	ckpt, err := safetensors.OpenDir(baseDir)
	if err != nil {
		return nil, fmt.Errorf("%s: base checkpoint %s: %w", op, baseDir, err)
	}
	defer ckpt.Close()
	plans, err := plan(ckpt, baseDir, opts.Adapters, sign)
	if err != nil {
		return nil, err
	}

	rep = &Report{Operation: op, BaseDir: baseDir, OutputDir: outDir, SafeMerge: opts.SafeMerge}
	for i, w := range opts.Adapters {
		name := w.Name
		if name == "" {
			name = fmt.Sprintf("adapter %d", i)
		}
		rep.Adapters = append(rep.Adapters, AdapterRef{Name: name, Weight: w.Weight, R: w.Adapter.Config.R, Alpha: w.Adapter.Config.LoraAlpha})
	}

	parent := filepath.Dir(absOut)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(absOut)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()

	byFile := map[string][]*tensorPlan{}
	for _, p := range plans {
		f := ckpt.ShardOf(p.name)
		byFile[f] = append(byFile[f], p)
	}

	// 1. Copy every file that no adapter touches as is.
	t0 := time.Now()
	copied, err := fscopy.Tree(ctx, baseDir, tmp, fscopy.Options{Exclusive: true,
		Skip: func(rel string) bool { _, ok := byFile[filepath.ToSlash(rel)]; return ok }})
	if err != nil {
		return nil, fmt.Errorf("%s: copy %s: %w", op, baseDir, err)
	}
	rep.BytesCopied = copied
	rep.CopySeconds = time.Since(t0).Seconds()

	// 2. Write each touched file in one pass: untouched byte ranges copied,
	// adapted tensors computed block by block.
	t1 := time.Now()
	// Files are written a few at a time, so that one file's kernel copy
	// overlaps another's arithmetic; the block buffers, one set per worker
	// for the whole run, bound the tensors computed at once (and the memory).
	pool := make(chan *scratch, max(1, opts.Workers))
	for range cap(pool) {
		pool <- new(scratch)
	}
	var (
		tickMu sync.Mutex
		done   int
	)
	tick := func() {
		tickMu.Lock()
		defer tickMu.Unlock()
		done++
		if opts.Progress != nil {
			opts.Progress(done, len(plans))
		}
	}
	files := slices.Sorted(maps.Keys(byFile))
	type fileResult struct {
		trs  []TensorReport
		n, c int64
		err  error
	}
	results := make([]fileResult, len(files))
	fileSlots := make(chan struct{}, min(len(files), cap(pool)+1))
	fileCtx, cancelFiles := context.WithCancel(ctx)
	defer cancelFiles()
	var (
		fwg      sync.WaitGroup
		errMu    sync.Mutex
		firstErr error // the first file's failure, not the cancellations it causes
	)
	for i, file := range files {
		ps := byFile[file]
		slices.SortFunc(ps, func(a, b *tensorPlan) int { return int(a.info.DataOffsets[0] - b.info.DataOffsets[0]) })
		fileSlots <- struct{}{}
		fwg.Go(func() {
			defer func() { <-fileSlots }()
			r := &results[i]
			r.trs, r.n, r.c, r.err = rewriteFile(fileCtx, filepath.Join(baseDir, file), filepath.Join(tmp, file), file, ps, opts, pool, tick)
			if r.err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = r.err
				}
				errMu.Unlock()
				cancelFiles()
			}
			log.Debug("merged file", "file", file, "tensors", len(ps))
		})
	}
	fwg.Wait()
	if firstErr != nil {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		return nil, fmt.Errorf("%s: %w", op, firstErr)
	}
	for _, r := range results {
		rep.Tensors = append(rep.Tensors, r.trs...)
		rep.BytesRewritten += r.n
		rep.BytesCopied += r.c
	}
	rep.UpdateSeconds = time.Since(t1).Seconds()
	rep.UntouchedTensors = len(ckpt.Names()) - len(plans)
	slices.SortFunc(rep.Tensors, func(a, b TensorReport) int { return cmp.Compare(a.Name, b.Name) })

	rep.Files, err = listFiles(tmp, byFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !opts.NoSync {
		t2 := time.Now()
		if err := atomicfile.SyncTree(tmp, nil); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		rep.SyncSeconds = time.Since(t2).Seconds()
	}
	if opts.Verify != nil {
		t3 := time.Now()
		eq, err := opts.Verify(ctx, tmp)
		rep.Equivalence = eq
		if err != nil {
			return rep, fmt.Errorf("%s: %w", op, err)
		}
		rep.VerifySeconds = time.Since(t3).Seconds()
	}
	if opts.ReportFile != "" {
		if opts.ReportFile != filepath.Base(opts.ReportFile) {
			return nil, fmt.Errorf("%s: report file %q must be a plain file name", op, opts.ReportFile)
		}
		raw, err := json.MarshalIndent(rep.Stable(), "", "  ")
		if err != nil {
			return nil, err
		}
		path := filepath.Join(tmp, opts.ReportFile)
		if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if !opts.NoSync {
			if err := atomicfile.SyncTree(tmp, nil); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
		}
		rep.Files = append(rep.Files, FileReport{Name: opts.ReportFile, Bytes: int64(len(raw) + 1)})
	}
	// 3. Move the result into place.
	if _, statErr := os.Stat(absOut); statErr == nil {
		old := tmp + ".old"
		if err := os.Rename(absOut, old); err != nil {
			return nil, fmt.Errorf("%s: replace %s: %w", op, outDir, err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, absOut); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	_ = atomicfile.Sync(parent)
	rep.TotalSeconds = time.Since(start).Seconds()
	rep.PeakRSSBytes, _ = procfs.PeakRSS() // 0 where /proc is absent
	log.Info(op+" done", "base", baseDir, "out", outDir, "tensors", len(rep.Tensors), "seconds", rep.TotalSeconds)
	return rep, nil
}

// rewriteFile writes dst as a copy of the safetensors file src in which
// the planned tensors (sorted by offset) are updated. It returns the reports,
// the bytes computed and the bytes copied.
func rewriteFile(ctx context.Context, src, dst, file string, ps []*tensorPlan, opts Options, pool chan *scratch, tick func()) ([]TensorReport, int64, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, 0, 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, 0, 0, err
	}
	var hdr [8]byte
	if _, err := in.ReadAt(hdr[:], 0); err != nil {
		return nil, 0, 0, fmt.Errorf("%s: read header length: %w", src, err)
	}
	dataStart := 8 + int64(binary.LittleEndian.Uint64(hdr[:]))
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, 0, 0, err
	}
	defer out.Close()
	// The byte ranges between adapted tensors are copied by the kernel
	// (system time) while ...
	gaps := make([][2]int64, 0, len(ps)+1) // [begin, end) of each untouched range
	var pos int64
	for _, p := range ps {
		gaps = append(gaps, [2]int64{pos, dataStart + p.info.DataOffsets[0]})
		pos = dataStart + p.info.DataOffsets[1]
	}
	gaps = append(gaps, [2]int64{pos, st.Size()})
	var copied int64
	copyDone := make(chan error, 1)
	go func() {
		for _, g := range gaps {
			if ctx.Err() != nil {
				break
			}
			if err := copyRange(out, in, g[0], g[1]-g[0]); err != nil {
				copyDone <- fmt.Errorf("%s: copy bytes [%d, %d): %w", file, g[0], g[1], err)
				return
			}
			copied += g[1] - g[0]
		}
		copyDone <- nil
	}()

	// ... the adapted tensors are computed by a few workers, each with its
	// own block buffers, writing at their own offsets.
	reports := make([]TensorReport, len(ps))
	errs := make([]error, len(ps))
	var written atomic.Int64
	next := atomic.Int64{}
	workers := min(len(ps), cap(pool))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ps) || ctx.Err() != nil {
					return
				}
				p := ps[i]
				s := <-pool
				tr, n, err := rewriteTensor(in, out, dataStart, p, opts, s)
				pool <- s
				if err != nil {
					errs[i] = fmt.Errorf("%s: tensor %q: %w", file, p.name, err)
					next.Store(int64(len(ps))) // stop the others
					return
				}
				tr.File = file
				reports[i] = tr
				written.Add(n)
				tick()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append(errs, <-copyDone)...); err != nil {
		return nil, 0, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, 0, err
	}
	return reports, written.Load(), copied, out.Close()
}

// copyRange copies n bytes at offset off of src to the same offset of dst,
// in the kernel (copy_file_range) when it can.
func copyRange(dst, src *os.File, off, n int64) error {
	for n > 0 {
		roff, woff := off, off
		c, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(min(n, 1<<30)), 0)
		if err != nil || c == 0 {
			// Not supported here (cross-device, old kernel, ...): copy through memory.
			_, err := io.Copy(io.NewOffsetWriter(dst, off), io.NewSectionReader(src, off, n))
			return err
		}
		off += int64(c)
		n -= int64(c)
	}
	return nil
}

// scratch holds the buffers of one block, reused across blocks and tensors:
// the stored bytes (W0 on read, W' on write) and W' as float32.
type scratch struct {
	raw []byte
	w   []float32
}

func (s *scratch) grow(n, esize int) {
	if cap(s.w) < n {
		s.raw = make([]byte, n*esize)
		s.w = make([]float32, n)
	}
	s.raw, s.w = s.raw[:n*esize], s.w[:n]
}

func rewriteTensor(in, out *os.File, dataStart int64, p *tensorPlan, opts Options, s *scratch) (TensorReport, int64, error) {
	info := p.info
	tr := TensorReport{Name: p.name, DType: string(info.DType), Shape: slices.Clone(info.Shape), ReplacedBy: p.replacedBy}
	for _, c := range p.contributions {
		tr.Adapters = append(tr.Adapters, c.adapter)
	}
	rows, cols := 1, 1
	switch len(info.Shape) {
	case 0:
	case 1:
		cols = info.Shape[0]
	default:
		rows = info.Shape[0]
		for _, d := range info.Shape[1:] {
			cols *= d
		}
	}
	esize := info.DType.Size()
	blockRows := max(1, opts.BlockElements/max(cols, 1))
	// A plain LoRA update needs W0 only when encoding W' = W0 + ΔW: one
	// pass over the block instead of a decode pass and an encode pass.
	deltaOnly := p.replacement == nil && p.magnitude == nil && len(p.contributions) > 0
	// load reads rows [r0, r1) of W0 into s.raw and puts W0 + ΔW (ΔW alone when deltaOnly)
	// (or the replacement) into s.w; it returns the block's byte offset.
	load := func(r0, r1 int) (int64, error) {
		n := (r1 - r0) * cols
		off := dataStart + info.DataOffsets[0] + int64(r0*cols)*int64(esize)
		s.grow(n, esize)
		if _, err := in.ReadAt(s.raw, off); err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		if p.replacement != nil {
			copy(s.w, p.replacement[r0*cols:r1*cols])
			return off, nil
		}
		if deltaOnly {
			// Only ΔW goes into s.w; finish adds W0 as it encodes.
			for i, c := range p.contributions {
				addDelta(s.w, c, r0, r1, cols, i > 0)
			}
			return off, nil
		}
		decode(info.DType, s.raw, s.w)
		for _, c := range p.contributions {
			addDelta(s.w, c, r0, r1, cols, true)
		}
		return off, nil
	}
	// DoRA: the norm of every output of W0 + ΔW. Outputs are rows (one
	// pass) or, for fan_in_fan_out weights, columns (a first pass sums them).
	var colNorm []float64
	if p.magnitude != nil && p.magnitudeFIFO {
		colNorm = make([]float64, cols)
		for r0 := 0; r0 < rows; r0 += blockRows {
			r1 := min(rows, r0+blockRows)
			if _, err := load(r0, r1); err != nil {
				return tr, 0, err
			}
			for i, x := range s.w {
				colNorm[i%cols] += float64(x) * float64(x)
			}
		}
		for j := range colNorm {
			colNorm[j] = float64(p.magnitude[j]) / math.Sqrt(colNorm[j])
		}
	}
	var maxDelta float32
	for r0 := 0; r0 < rows; r0 += blockRows {
		r1 := min(rows, r0+blockRows)
		off, err := load(r0, r1)
		if err != nil {
			return tr, 0, err
		}
		if p.magnitude != nil {
			for r := 0; r < r1-r0; r++ {
				row := s.w[r*cols : (r+1)*cols]
				if colNorm != nil {
					for j := range row {
						row[j] = float32(float64(row[j]) * colNorm[j])
					}
					continue
				}
				var ss float64
				for _, x := range row {
					ss += float64(x) * float64(x)
				}
				f := float64(p.magnitude[r0+r]) / math.Sqrt(ss)
				for j := range row {
					row[j] = float32(float64(row[j]) * f)
				}
			}
		}
		// One pass: the change against W0, the finiteness check, and the
		// encoding.
		m, bad := finish(info.DType, s.w, s.raw, deltaOnly)
		if bad >= 0 && opts.SafeMerge {
			row, col := r0+bad/cols, bad%cols
			return tr, 0, fmt.Errorf("element [%d, %d] would become %v (not finite in %s): %w", row, col, s.w[bad], info.DType, ErrNonFinite)
		}
		maxDelta = max(maxDelta, m)
		if _, err := out.WriteAt(s.raw, off); err != nil {
			return tr, 0, fmt.Errorf("write: %w", err)
		}
	}
	tr.MaxAbsDelta = float64(maxDelta)
	return tr, int64(rows*cols) * int64(esize), nil
}

func listFiles(dir string, modified map[string][]*tensorPlan) ([]FileReport, error) {
	var out []FileReport
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		_, mod := modified[rel]
		out = append(out, FileReport{Name: filepath.ToSlash(rel), Bytes: st.Size(), Modified: mod})
		return nil
	})
	return out, err
}
