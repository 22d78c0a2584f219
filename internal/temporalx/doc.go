// Package temporalx holds what the loraflow commands share about reaching
// Temporal: client options from flags and environment (address, namespace,
// TLS), a reachability check, and the local dev server that the CLI starts
// when no server is configured (the "embedded default").
package temporalx
