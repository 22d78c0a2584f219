// Package trust is the worker operator's side of loraflow's trust boundary.
//
// Anyone who can start a workflow in the Temporal namespace writes the spec
// a run follows, so nothing in a spec may decide what the worker trusts or
// where its secrets go. The operator's [Config] (flags, environment, mounted
// secrets of the worker) declares:
//
//   - the artifact root and the input roots: the folders from which base
//     models and dataset files may be read (after symlinks are resolved);
//   - the registries by name, each with its URI; credentials come only from
//     the worker's environment (MLFLOW_TRACKING_TOKEN and friends, read by
//     package registry) and go only to a declared registry;
//   - the signing keys by name (a PEM path, env:VAR or a secret folder);
//   - the trusted public keys.
//
// [New] turns a Config into a [Policy]. A spec may then only name what the
// Config declares: registry.name (or a registry.uri equal to a declared
// one, or a file:// folder inside the roots), signing.key as a declared
// key name, signing.trusted_keys as keys already trusted. Everything else
// is a *[SpecError] naming the field, which the activities report as a
// non-retryable BadSpec error. See docs/threat-model.md.
package trust
