// Package safetensors reads and writes the safetensors tensor file format
// (https://github.com/huggingface/safetensors) used by Hugging Face checkpoints
// and PEFT adapters.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON (an
// object mapping tensor names to {"dtype","shape","data_offsets"} plus an
// optional "__metadata__" string map, right-padded with spaces), then the data
// buffer. Open maps a file into memory and validates it strictly: header size
// limits, UTF-8 JSON that starts with '{', known dtypes, no duplicate names,
// shape × element size equal to each byte range, and byte ranges that tile the
// data buffer exactly with no holes or overlaps. Errors name the file and the
// tensor and match ErrInvalid with errors.Is.
//
// OpenDir opens a checkpoint folder, either one model.safetensors or a sharded
// checkpoint described by model.safetensors.index.json.
//
// WriteFile and Writer produce files byte-for-byte identical to the reference
// Rust serializer: tensors ordered by descending dtype alignment then by name,
// compact JSON with "__metadata__" first, padded with spaces to a multiple of
// 8 bytes. (The reference iterates a hash map for "__metadata__", so with more
// than one metadata key its order is unspecified; this package sorts the keys.)
// Writes are atomic: a temporary file in the same folder is fsynced and renamed.
package safetensors
