//go:build !unix

package bucket

import "errors"

// notDirErr matches nothing where ENOTDIR does not exist.
var notDirErr = errors.New("bucket: not a directory")
