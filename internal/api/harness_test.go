package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/api"
	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/recording/bucket"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/readcache"
	"github.com/openstage/openstage/internal/store/teststore"
	"github.com/openstage/openstage/internal/token"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	rootID     = "AKOSTESTROOT0000"
	rootSecret = "root-secret"
	readID     = "AKOSTESTREADONLY"
	readSecret = "read-secret"
	region     = "us-east-1"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type harness struct {
	t       testing.TB
	buckets *bucket.Dir
	ctx     context.Context
	srv     *httptest.Server
	domain  *stage.Service
	clk     *clock.Fake
	client  *ivsrealtime.Client
}

type opts struct {
	quotas stage.Quotas
	now    func() time.Time // the API's clock for SigV4; nil = real time
}

func newHarness(t testing.TB, o opts) *harness {
	t.Helper()
	ctx := context.Background()
	var st store.Store = teststore.Open(t) // SQLite, or PostgreSQL when OPENSTAGE_TEST_DATABASE is set
	if !teststore.Postgres() {
		st = readcache.New(st, 0) // as the server runs on SQLite
	}
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(key, token.KeyIDFor(&key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	q := o.quotas
	if q == (stage.Quotas{}) {
		q = stage.DefaultQuotas
	}
	clk := clock.NewFake(t0)
	// Buckets are directories, as with the server's default: CreateStorageConfiguration makes them here.
	buckets, err := bucket.NewDir(filepath.Join(t.TempDir(), "recordings"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	domain := stage.New(stage.Config{
		Account: ivs.Account{Region: region, ID: "123456789012"},
		WHIPURL: "http://127.0.0.1:9/whip", EventsURL: "ws://127.0.0.1:9/events",
		SessionEndGrace: 10 * time.Second, Quotas: q, Buckets: buckets,
	}, st, clk, signer, log)
	keys, err := api.NewKeys([]api.Key{
		{AccessKeyID: rootID, SecretAccessKey: rootSecret},
		{AccessKeyID: readID, SecretAccessKey: readSecret, Actions: []string{"ivs:Get*", "ivs:List*"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(api.Config{Domain: domain, Keys: keys, Regions: []string{region}, PageKey: []byte("test page key"), Now: o.now, Log: log})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = domain.Shutdown(ctx) // before teststore's cleanup closes the store
	})
	hs := &harness{t: t, ctx: ctx, srv: srv, domain: domain, clk: clk, buckets: buckets}
	hs.client = hs.clientFor(rootID, rootSecret)
	return hs
}

// clientFor is the real AWS SDK client pointed at the server, without retries so errors surface at once.
func (h *harness) clientFor(id, secret string) *ivsrealtime.Client {
	var creds aws.CredentialsProvider = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
	})
	if id == "" {
		creds = aws.AnonymousCredentials{}
	}
	return ivsrealtime.New(ivsrealtime.Options{
		BaseEndpoint: aws.String(h.srv.URL), Region: region, Credentials: creds, RetryMaxAttempts: 1,
		HTTPClient: h.srv.Client(),
	})
}

// raw sends a signed request with any body, for what the SDK would never send.
func (h *harness) raw(method, path string, body []byte) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(h.ctx, aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret},
		req, hex.EncodeToString(sum[:]), "ivs", region, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}
