//go:build !amd64

package quant

func decode4(dst []float32, src []byte, code *[16]float32, am float32) {
	decode4Go(dst, src, code, am)
}
