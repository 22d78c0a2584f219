// Package spec defines the pipeline spec: the YAML file a user writes to
// describe one LoRA fine-tuning run (base model, dataset, PEFT LoRA config,
// training, evaluation gate, merge, signing, registry and carbon settings).
//
// Load validates a file against the embedded JSON Schema (schema.json) and
// then decodes it strictly: an unknown field is an error naming the field and
// its line. Relative paths are resolved against the spec file's folder, so a
// loaded Spec can be handed to a worker running anywhere that shares the
// filesystem.
package spec
