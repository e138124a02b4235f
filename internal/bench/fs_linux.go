//go:build linux

package bench

import (
	"fmt"
	"syscall"
)

// filesystem names the filesystem under dir: a tmpfs makes fsync free and the ingest numbers meaningless.
func filesystem(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case 0x01021994:
		return dir + " (tmpfs: fsync costs nothing here, ingest figures are not durable ones)"
	case 0xEF53:
		return dir + " (ext4)"
	case 0x58465342:
		return dir + " (xfs)"
	case 0x9123683E:
		return dir + " (btrfs)"
	case 0x794c7630:
		return dir + " (overlayfs)"
	}
	return fmt.Sprintf("%s (filesystem type %#x)", dir, st.Type)
}
