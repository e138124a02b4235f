package bucket

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzNamesStayInside: bucket names come from API requests (s3.bucketName) and keys will be built from
// stage, session and participant ids, so a name or key that passes ValidName/ValidKey must never make Dir
// reach outside its root: no "..", no absolute path, no separator in a bucket name.
func FuzzNamesStayInside(f *testing.F) {
	for _, seed := range [][2]string{{"my-bucket", "a/b.mp4"}, {"..", "../x"}, {"a.b", "a/../../b"}, {"abc", "/etc/passwd"},
		{"abc", "a\\..\\b"}, {"abc", "."}, {"1.2.3.4", "x"}} {
		f.Add(seed[0], seed[1])
	}
	root := filepath.FromSlash("/data/recordings")
	f.Fuzz(func(t *testing.T, name, key string) {
		if ValidName(name) {
			dir := filepath.Join(root, name)
			if filepath.Dir(dir) != root || strings.HasPrefix(name, ".") {
				t.Fatalf("bucket %q is the directory %s, not one of %s", name, dir, root)
			}
			if ValidKey(key) {
				p := filepath.Join(dir, filepath.FromSlash(key))
				if rel, err := filepath.Rel(dir, p); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
					t.Fatalf("key %q is the path %s, outside its bucket %s", key, p, dir)
				}
			}
		}
	})
}
