// Package digestfmt formats digests for people: messages, tables, progress.
package digestfmt

import "strings"

// ShortLen is how many hex digits Short keeps.
const ShortLen = 12

// Short returns the first ShortLen hex digits of a digest, keeping an
// "algorithm:" prefix when there is one ("sha256:3f2a…" → "sha256:3f2a9c01b2d4").
// Shorter strings come back unchanged.
func Short(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok {
		algo, hex = "", d
	} else {
		algo += ":"
	}
	if len(hex) > ShortLen {
		hex = hex[:ShortLen]
	}
	return algo + hex
}
