//go:build !unix

package loadtest

import "time"

// processCPU is not available here: the report then says 0.
func processCPU() time.Duration { return 0 }
