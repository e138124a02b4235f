package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openstage/openstage/internal/api"
	"github.com/openstage/openstage/internal/api/validate"
)

// TestOperationsAreTheModels: api.Operations, the closed set of operation names metrics may see, is
// exactly the generated validation table's operations (supported or not).
func TestOperationsAreTheModels(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "validate/model_gen.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var model []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "operations" {
			return true
		}
		for _, el := range vs.Values[0].(*ast.CompositeLit).Elts {
			k, _ := strconv.Unquote(el.(*ast.KeyValueExpr).Key.(*ast.BasicLit).Value)
			model = append(model, k)
		}
		return false
	})
	got := api.Operations()
	slices.Sort(model)
	slices.Sort(got)
	if len(model) < 30 || !slices.Equal(got, model) {
		t.Fatalf("api.Operations() = %v\nthe model's operations = %v", got, model)
	}
	for _, op := range got {
		if !validate.Known(op) {
			t.Errorf("%s is not known to validate", op)
		}
	}
}

type observation struct{ op, errorType string }

// TestObserveNeverGetsTheClientsPath sends what a client controls as the operation (invalid UTF-8, made-up
// names, a tag operation's name at the wrong route), signed and not: Observe is told "" or an operation of
// the model, and the error type the client was answered.
func TestObserveNeverGetsTheClientsPath(t *testing.T) {
	h := newHarness(t, opts{})
	keys, err := api.NewKeys([]api.Key{{AccessKeyID: rootID, SecretAccessKey: rootSecret}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		got []observation
	)
	handler := api.New(api.Config{Domain: h.domain, Keys: keys, Regions: []string{region}, PageKey: []byte("k"),
		Observe: func(op, errorType string, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, observation{op, errorType})
		}})

	cases := []struct {
		method, target string
		signed         bool
		wantOp         string
		wantType       string // "" for success
	}{
		{"POST", "/%FF%FE", false, "", "MissingAuthenticationTokenException"},
		{"POST", "/abc123", false, "", "MissingAuthenticationTokenException"},
		{"POST", "/%C0%AF", false, "", "MissingAuthenticationTokenException"},
		{"GET", "/", false, "", "MissingAuthenticationTokenException"},
		{"PUT", "/GetStage%00", false, "", "MissingAuthenticationTokenException"},
		{"POST", "/GetStage", false, "GetStage", "MissingAuthenticationTokenException"},
		{"POST", "/abc123", true, "", "UnknownOperationException"},
		{"POST", "/%FF%FE", true, "", ""}, // whatever the signature check makes of it, an AWS error
		{"POST", "/TagResource", true, "", "UnknownOperationException"},
		{"POST", "/tags/%FF", true, "TagResource", "ValidationException"},
		{"POST", "/CreateEncoderConfiguration", true, "CreateEncoderConfiguration", "ValidationException"},
		{"POST", "/ListStages", true, "ListStages", ""},
	}
	for _, c := range cases {
		body := []byte(`{}`)
		req := httptest.NewRequest(c.method, c.target, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if c.signed {
			sum := sha256.Sum256(body)
			if err := v4.NewSigner().SignHTTP(req.Context(), aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret},
				req, hex.EncodeToString(sum[:]), "ivs", region, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)

		mu.Lock()
		if len(got) == 0 {
			mu.Unlock()
			t.Fatalf("%s %s: not observed", c.method, c.target)
		}
		o := got[len(got)-1]
		got = got[:0]
		mu.Unlock()

		errType := rec.Header().Get("x-amzn-ErrorType")
		if o.op != c.wantOp || o.errorType != errType {
			t.Errorf("%s %s (signed %v): observed %+v, want op %q and the answered error type %q", c.method, c.target, c.signed, o, c.wantOp, errType)
		}
		if o.op != "" && !slices.Contains(api.Operations(), o.op) {
			t.Errorf("%s %s: observed operation %q is not the model's", c.method, c.target, o.op)
		}
		if c.method == "POST" && c.target == "/%FF%FE" && c.signed {
			if errType == "" || rec.Code < 400 {
				t.Errorf("signed %s: %d without an AWS error", c.target, rec.Code)
			}
			continue
		}
		if errType != c.wantType {
			t.Errorf("%s %s: answered %d %q, want %q: %s", c.method, c.target, rec.Code, errType, c.wantType, rec.Body)
		}
		if errType != "" {
			var e struct{ Message string }
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Message == "" || rec.Code == http.StatusOK {
				t.Errorf("%s %s: error without the restJson1 shape: %d %s", c.method, c.target, rec.Code, rec.Body)
			}
		}
	}
}
