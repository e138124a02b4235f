//go:build !unix

package sqlite

import "os"

// lockFile takes no lock where there is no flock; Store.Exclusive then reports false.
func lockFile(string) (*os.File, error) { return nil, nil }
