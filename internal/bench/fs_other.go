//go:build !linux

package bench

func filesystem(dir string) string { return dir }
