// Package registry publishes fine-tuned adapters as versions of a registered
// model and moves the aliases that say which version serves.
//
// Two implementations sit behind one Registry interface, chosen by URI
// (see Open):
//
//   - file:///path (the default): an embedded registry kept in a folder.
//     Versions, tags, aliases and descriptions live in one JSON document per
//     model, replaced atomically (temp file, fsync, rename) under an flock so
//     that several workers, in one process or many, never corrupt it or
//     number two versions alike. Artifact folders are copied in once per
//     artifact digest.
//   - http(s)://host[:port][/prefix]: an MLflow tracking server, spoken to
//     through its REST API (/api/2.0/mlflow/...) and its proxied artifact
//     API (/api/2.0/mlflow-artifacts/artifacts/...). Each publish becomes an
//     experiment run (params, metrics with the training curve, tags, dataset
//     inputs, artifacts) and a model version whose source is the run's
//     artifact URI.
//
// Publish is idempotent: the request's ArtifactDigest is stored as the version
// tag TagArtifactDigest, and a retried Publish finds and returns the version
// it made before instead of making a second one.
//
// Champion/challenger: the alias AliasChampion names the serving version.
// Promote moves it and remembers the version it replaced under
// AliasPreviousChampion; Rollback moves it back. Aliases move only when a
// caller asks (Publish with Alias, Promote, Rollback, SetAlias).
//
// WriteModelCard writes a Hugging Face model card (README.md with YAML front
// matter) into an adapter folder.
package registry
