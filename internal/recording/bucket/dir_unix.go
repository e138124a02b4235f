//go:build unix

package bucket

import "syscall"

// notDirErr: a path through a file ("a/b" when "a" is an object) names nothing.
var notDirErr error = syscall.ENOTDIR
