package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/openstage/openstage/internal/store/teststore"
	"github.com/openstage/openstage/internal/token"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestSigningKeyLivesInTheStore(t *testing.T) {
	ctx := context.Background()
	st := teststore.Open(t)
	dir := t.TempDir()
	k1, err := signingKey(ctx, st, dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := signingKey(ctx, st, t.TempDir(), quiet) // another node: another data dir, the same store
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("a second start made another key")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("the key was written to the data dir: %v", entries)
	}
}

// TestSigningKeyImportsTheDataDirFile: a data dir from before the key moved into the store keeps its key,
// so the tokens it made stay valid; once stored, the store's key wins over the file.
func TestSigningKeyImportsTheDataDirFile(t *testing.T) {
	ctx := context.Background()
	old, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// The SEC 1 form that `openssl ecparam -genkey` writes, to be sure any key the file held is taken.
	der, err := x509.MarshalECPrivateKey(old)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, legacyKeyFile)
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	st := teststore.Open(t)
	got, err := signingKey(ctx, st, dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(old) {
		t.Fatal("the data dir's key was not imported")
	}
	other, _ := token.GenerateKey()
	b, _ := token.MarshalPrivateKeyPEM(other)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := signingKey(ctx, st, dir, quiet); err != nil || !got.Equal(old) {
		t.Fatalf("after the file changed: %v; want the stored key", err)
	}
}

func TestSigningKeyDamagedFileStoresNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, legacyKeyFile)
	if err := os.WriteFile(file, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := teststore.Open(t)
	if _, err := signingKey(ctx, st, dir, quiet); err == nil {
		t.Fatal("a damaged key file was accepted")
	}
	if b, _ := os.ReadFile(file); string(b) != "not a key" {
		t.Fatal("the damaged file was overwritten")
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := signingKey(ctx, st, dir, quiet); err != nil {
		t.Fatalf("after removing the damaged file: %v", err)
	}
}

// TestSigningKeyNodesStartingTogether: nodes that start at once on one database, each with a different key
// file in its data dir, end up with one key.
func TestSigningKeyNodesStartingTogether(t *testing.T) {
	ctx := context.Background()
	a, b := teststore.OpenPair(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()}
	for _, d := range dirs[:2] {
		k, _ := token.GenerateKey()
		pemBytes, _ := token.MarshalPrivateKeyPEM(k)
		if err := os.WriteFile(filepath.Join(d, legacyKeyFile), pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keys := make([]string, len(dirs))
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, d := range dirs {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			k, err := signingKey(ctx, st, d, quiet)
			if err == nil {
				keys[i] = token.KeyIDFor(&k.PublicKey)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if keys[i] != keys[0] {
			t.Fatalf("node %d signs with %s, node 0 with %s", i, keys[i], keys[0])
		}
	}
}
