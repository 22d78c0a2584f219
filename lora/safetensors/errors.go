package safetensors

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (errors.Is) by every error that reports a malformed
// file, index or tensor, as opposed to an I/O failure.
var ErrInvalid = errors.New("invalid safetensors data")

// FormatError reports a malformed safetensors file or index. File is the path
// as given to Open, OpenDir or a writer; Tensor is empty when the fault is not
// tied to one tensor.
type FormatError struct {
	File   string
	Tensor string
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("safetensors: %s: tensor %q: %s", e.File, e.Tensor, e.Msg)
	}
	return fmt.Sprintf("safetensors: %s: %s", e.File, e.Msg)
}

// Is makes errors.Is(err, ErrInvalid) true for a *FormatError.
func (e *FormatError) Is(target error) bool { return target == ErrInvalid }

func formatErr(file, tensor, format string, args ...any) error {
	return &FormatError{File: file, Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
}
