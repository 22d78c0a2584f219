package lora

import (
	"math"
	"math/rand/v2"
	"testing"
)

// denseAttention is the textbook causal attention and its gradients, on
// separate row-major q [B·S, heads·hd], k, v [B·S, kvHeads·hd].
func denseAttention(B, S, heads, kvHeads, hd int, q, k, v, dO []float64) (o, dq, dk, dv []float64) {
	qd, kd := heads*hd, kvHeads*hd
	o, dq = make([]float64, B*S*qd), make([]float64, B*S*qd)
	dk, dv = make([]float64, B*S*kd), make([]float64, B*S*kd)
	scale := 1 / math.Sqrt(float64(hd))
	for b := 0; b < B; b++ {
		for h := 0; h < heads; h++ {
			kv := h / (heads / kvHeads)
			for i := 0; i < S; i++ {
				qi := q[(b*S+i)*qd+h*hd:][:hd]
				p := make([]float64, i+1)
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					kj := k[(b*S+j)*kd+kv*hd:][:hd]
					for c := range qi {
						p[j] += qi[c] * kj[c] * scale
					}
					mx = math.Max(mx, p[j])
				}
				var sum float64
				for j := range p {
					p[j] = math.Exp(p[j] - mx)
					sum += p[j]
				}
				doi := dO[(b*S+i)*qd+h*hd:][:hd]
				dp := make([]float64, i+1)
				var rowdot float64
				for j := range p {
					p[j] /= sum
					vj := v[(b*S+j)*kd+kv*hd:][:hd]
					for c := 0; c < hd; c++ {
						o[(b*S+i)*qd+h*hd+c] += p[j] * vj[c]
						dp[j] += doi[c] * vj[c]
						dv[(b*S+j)*kd+kv*hd+c] += p[j] * doi[c]
					}
					rowdot += p[j] * dp[j]
				}
				for j := range p {
					ds := p[j] * (dp[j] - rowdot) * scale
					for c := 0; c < hd; c++ {
						dq[(b*S+i)*qd+h*hd+c] += ds * k[(b*S+j)*kd+kv*hd+c]
						dk[(b*S+j)*kd+kv*hd+c] += ds * qi[c]
					}
				}
			}
		}
	}
	return o, dq, dk, dv
}

// TestAttentionTilesMatchDense: the tiled causal attention (several query
// tiles, the last one partial, grouped-query heads, q/k/v interleaved in one
// buffer as GPT-2's c_attn writes them) gives the textbook values and
// gradients.
func TestAttentionTilesMatchDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	B, S, heads, kvHeads, hd := 2, 2*attnTile+23, 4, 2, 3
	qd, kd := heads*hd, kvHeads*hd
	ld := qd + 2*kd
	q, k, v, dO := randVec(rng, B*S*qd), randVec(rng, B*S*kd), randVec(rng, B*S*kd), randVec(rng, B*S*qd)
	fused := make([]float64, B*S*ld)
	for r := 0; r < B*S; r++ {
		copy(fused[r*ld:], q[r*qd:(r+1)*qd])
		copy(fused[r*ld+qd:], k[r*kd:(r+1)*kd])
		copy(fused[r*ld+qd+kd:], v[r*kd:(r+1)*kd])
	}
	sh := attnShape{B: B, S: S, heads: heads, kvHeads: kvHeads, hd: hd, ldq: ld, ldk: ld, ldv: ld, ldo: qd}
	pool := &bufPool[float64]{}
	o := make([]float64, B*S*qd)
	attentionForward(sh, fused, fused[qd:], fused[qd+kd:], o, pool)
	dfused := make([]float64, B*S*ld)
	for i := range dfused {
		dfused[i] = math.NaN() // every gradient entry must be written
	}
	attentionBackward(sh, fused, fused[qd:], fused[qd+kd:], dO, dfused, dfused[qd:], dfused[qd+kd:], pool)
	wo, wdq, wdk, wdv := denseAttention(B, S, heads, kvHeads, hd, q, k, v, dO)
	check := func(name string, got func(r, c int) float64, want []float64, w int) {
		t.Helper()
		for r := 0; r < B*S; r++ {
			for c := 0; c < w; c++ {
				g, x := got(r, c), want[r*w+c]
				if !(math.Abs(g-x) <= 1e-12*math.Max(1, math.Abs(x))) {
					t.Fatalf("%s[row %d, col %d] = %v, want %v", name, r, c, g, x)
				}
			}
		}
	}
	check("o", func(r, c int) float64 { return o[r*qd+c] }, wo, qd)
	check("dq", func(r, c int) float64 { return dfused[r*ld+c] }, wdq, qd)
	check("dk", func(r, c int) float64 { return dfused[r*ld+qd+c] }, wdk, kd)
	check("dv", func(r, c int) float64 { return dfused[r*ld+qd+kd+c] }, wdv, kd)
}
