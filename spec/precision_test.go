package spec

import (
	"testing"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/quant"
)

// The precision and quantization settings reach the engine's load
// options; unset they mean exact FP32 and no quantization, and values the
// engine does not have are refused by the schema.
func TestLoadOptions(t *testing.T) {
	s, err := Parse([]byte(minimal), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if o := s.LoadOptions(); o.Precision != lora.PrecisionFP32 || o.Quantization != nil {
		t.Fatalf("defaults: %+v", o)
	}
	q, err := Parse([]byte(minimal+"training:\n  precision: bf16\nquantization:\n  type: nf4\n"), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := q.LoadOptions()
	if o.Precision != lora.PrecisionBF16 || o.Quantization == nil || *o.Quantization != (quant.Config{Type: quant.NF4, BlockSize: 64, DoubleQuant: true}) {
		t.Fatalf("bf16 + nf4: %+v %+v", o, o.Quantization)
	}
	f, err := Parse([]byte(minimal+"quantization:\n  type: fp4\n  block_size: 128\n  double_quant: false\n"), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c := f.LoadOptions().Quantization; c == nil || *c != (quant.Config{Type: quant.FP4, BlockSize: 128}) {
		t.Fatalf("fp4: %+v", c)
	}
	for _, bad := range []string{
		"training:\n  precision: fp16\n",
		"quantization:\n  type: nf3\n",
		"quantization:\n  type: nf4\n  block_size: 48\n",
		"quantization:\n  type: nf4\n  group_size: 64\n",
	} {
		if _, err := Parse([]byte(minimal+bad), "s.yaml"); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
