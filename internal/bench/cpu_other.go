//go:build !linux

package bench

import "time"

// threadCPU is not available here; the ceiling then falls back to wall time.
func threadCPU() time.Duration { return 0 }
