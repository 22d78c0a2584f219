// Package artifact is the content-addressed artifact store that pipeline
// activities share. An artifact is a folder; its digest is the sha256 of a
// manifest listing every file's relative path and sha256, so equal folders
// have equal digests wherever they are. Activities pass Refs (URI and
// digest) through Temporal, never the data.
//
// Layout under the root:
//
//	objects/<digest>/            committed artifacts, never modified
//	index/<step>/<key>.json      which artifact a step produced for an input key
//	work/<step>/<key>/           scratch space that survives a worker crash
//	                             (training checkpoints live here)
//
// A retried activity computes the same key from its input, finds the index
// entry and returns the artifact it already made instead of making another.
package artifact
