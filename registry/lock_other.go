//go:build !unix

package registry

import (
	"context"
	"errors"
)

func lockFile(ctx context.Context, path string) (func(), error) {
	return nil, errors.New("the local registry needs flock, which this platform lacks")
}
