//go:build !amd64

package lowp

const hasBF16 = false

func dotPacked12x32(kp int, a *uint16, lda int, b *uint32, out *float32) {
	panic("lowp: no BF16 kernel on this architecture")
}

func dotRows12x32(kp int, a *uint16, lda int, b *uint16, ldb int, out *float32) {
	panic("lowp: no BF16 kernel on this architecture")
}

func cvtBF16(dst *uint16, src *float32, n int) { panic("lowp: no BF16 kernel on this architecture") }
