package sgemm_test

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/loraflow/loraflow/lora/internal/sgemm"
)

// The engine installs the implementation once; every blas32 call then uses
// it (Sgemm from this package, everything else from gonum).
func Example() {
	blas32.Use(sgemm.Implementation{})

	// C = A·Bᵀ with A 2×3 and B 2×3 (the engine's x·Wᵀ).
	a := blas32.General{Rows: 2, Cols: 3, Stride: 3, Data: []float32{1, 2, 3, 4, 5, 6}}
	b := blas32.General{Rows: 2, Cols: 3, Stride: 3, Data: []float32{1, 0, 1, 0, 1, 0}}
	c := blas32.General{Rows: 2, Cols: 2, Stride: 2, Data: make([]float32, 4)}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, b, 0, c)
	fmt.Println(c.Data)
	// Output: [4 2 10 5]
}
