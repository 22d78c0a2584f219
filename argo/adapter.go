package argo

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Files a trainer must leave in Job.OutputDir (the PEFT adapter format).
const (
	AdapterConfigFile  = "adapter_config.json"
	AdapterWeightsFile = "adapter_model.safetensors"
)

// CheckAdapterDir checks the shape of a PEFT adapter folder without loading
// it: the folder exists, adapter_config.json is a JSON object naming a
// peft_type, and adapter_model.safetensors has a well-formed header (length
// prefix inside the file, a JSON object). Deeper checks (shapes against the
// base model, digests) belong to Config.ValidateAdapter.
func CheckAdapterDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("adapter folder: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("adapter folder %s is not a directory", dir)
	}
	cfgPath := filepath.Join(dir, AdapterConfigFile)
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return fmt.Errorf("adapter folder: %w", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: %w", cfgPath, err)
	}
	if pt, _ := cfg["peft_type"].(string); pt == "" {
		return fmt.Errorf("%s: no peft_type", cfgPath)
	}
	return checkSafetensorsHeader(filepath.Join(dir, AdapterWeightsFile))
}

func checkSafetensorsHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("adapter folder: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return fmt.Errorf("%s: header length: %w", path, err)
	}
	const maxHeader = 100 << 20
	if n < 2 || n > maxHeader || n > uint64(st.Size()-8) {
		return fmt.Errorf("%s: header length %d does not fit a file of %d bytes", path, n, st.Size())
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Errorf("%s: header: %w", path, err)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &h); err != nil {
		return fmt.Errorf("%s: header is not a JSON object: %w", path, err)
	}
	return nil
}

func (b *Backend) checkAdapter(dir string) error {
	if err := CheckAdapterDir(dir); err != nil {
		return err
	}
	if b.cfg.ValidateAdapter != nil {
		if err := b.cfg.ValidateAdapter(dir); err != nil {
			return fmt.Errorf("adapter %s: %w", dir, err)
		}
	}
	return nil
}
