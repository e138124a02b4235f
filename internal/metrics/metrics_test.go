package metrics

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"

	"github.com/openstage/openstage/internal/awserr"
)

var testOps = []string{"CreateStage", "GetStage", "ListStages"}

// series returns every series of the registry's families named with prefix, as "name{label=value,...}".
func series(t *testing.T, m *Metrics, prefix string) []string {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), prefix) {
			continue
		}
		for _, mt := range f.GetMetric() {
			var ls []string
			for _, l := range mt.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out = append(out, f.GetName()+"{"+strings.Join(ls, ",")+"}")
		}
	}
	return out
}

func labels(t *testing.T, m *Metrics, family, label string) map[string]bool {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fams {
		if f.GetName() != family {
			continue
		}
		for _, mt := range f.GetMetric() {
			got[labelOf(mt, label)] = true
		}
	}
	return got
}

func labelOf(mt *dto.Metric, name string) string {
	for _, l := range mt.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return "(none)"
}

// TestClientStringsNeverBecomeLabels feeds what a client controls (invalid UTF-8, made-up names) to every
// labelled metric: nothing panics, and the only label values are the closed sets' and the fixed fallbacks.
func TestClientStringsNeverBecomeLabels(t *testing.T) {
	m := New(Sources{Operations: testOps})
	hostile := []string{"\xff\xfe", "abc123", "GetStage\x00", "getstage", "unknown\xff", "", "other", strings.Repeat("x", 1<<16)}
	for _, s := range hostile {
		m.ObserveAPI(s, "", time.Millisecond)
		m.ObserveAPI("GetStage", s, time.Millisecond)
		m.ObserveAPI(s, s, time.Millisecond)
		m.Rejected("whip")(s)
		m.Rejected("events")(s)
		m.Rejected(s)("expired")
	}
	m.ObserveAPI("GetStage", "ResourceNotFoundException", time.Millisecond)
	m.Rejected("whip")("expired")

	for _, c := range []struct {
		family, label string
		allowed       []string
	}{
		{"openstage_api_requests_total", "operation", append(slices.Clone(testOps), UnknownOperation)},
		{"openstage_api_request_duration_seconds", "operation", append(slices.Clone(testOps), UnknownOperation)},
		{"openstage_api_requests_total", "error_type", []string{"", "ResourceNotFoundException", Other}},
		{"openstage_rejected_tokens_total", "transport", []string{"whip", "events", Other}},
	} {
		for v := range labels(t, m, c.family, c.label) {
			if !utf8.ValidString(v) || !slices.Contains(c.allowed, v) {
				t.Errorf("%s has %s=%q, outside %q", c.family, c.label, v, c.allowed)
			}
		}
	}
	for v := range labels(t, m, "openstage_rejected_tokens_total", "reason") {
		if v != Other && !slices.Contains(rejectReasons["whip"], v) && !slices.Contains(rejectReasons["events"], v) {
			t.Errorf("rejected reason %q", v)
		}
	}
	// The text exposition is served, and holds none of the hostile strings.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || strings.Contains(string(body), "abc123") || strings.Contains(string(body), "getstage") {
		t.Fatalf("/metrics: %d\n%s", rec.Code, body)
	}
}

// TestSeriesBoundedByConstruction: however many distinct names clients send, the API series are at most
// (operations + unknown) × (error types + other), and the refusal series are all there from the start.
func TestSeriesBoundedByConstruction(t *testing.T) {
	m := New(Sources{Operations: testOps})
	rejectedAtStart := len(series(t, m, "openstage_rejected_tokens_total"))
	if want := len(rejectReasons["whip"]) + len(rejectReasons["events"]) + 2; rejectedAtStart != want {
		t.Fatalf("%d refusal series at start, want %d", rejectedAtStart, want)
	}
	if got := labels(t, m, "openstage_rejected_tokens_total", "reason"); !got["expired"] || !got["missing"] || !got["stage_mismatch"] {
		t.Fatalf("refusal reasons at start: %v", got)
	}
	for i := range 5000 {
		junk := strings.Repeat("\xfe", i%7) + string(rune('A'+i%26)) + strings.Repeat("z", i%13) + string(rune(i))
		m.ObserveAPI(junk, junk, time.Microsecond)
		m.Rejected("whip")(junk)
	}
	for _, op := range append(slices.Clone(testOps), "", UnknownOperation) {
		for _, et := range errorTypes {
			m.ObserveAPI(op, string(et), time.Microsecond)
		}
		m.ObserveAPI(op, "no such type", time.Microsecond)
	}
	bound := (len(testOps) + 1) * (len(errorTypes) + 1)
	if got := len(series(t, m, "openstage_api_requests_total")); got != bound {
		t.Fatalf("%d request series, want exactly the bound %d", got, bound)
	}
	if got := len(series(t, m, "openstage_api_request_duration_seconds")); got != len(testOps)+1 {
		t.Fatalf("%d latency series, want %d", got, len(testOps)+1)
	}
	if got := len(series(t, m, "openstage_rejected_tokens_total")); got != rejectedAtStart {
		t.Fatalf("refusal series grew from %d to %d", rejectedAtStart, got)
	}
}

// constantsOf parses a Go file and returns the values of its string constants declared with type typ.
func constantsOf(t *testing.T, file, typ string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typ {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					out = append(out, strings.Trim(lit.Value, "\"`"))
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s constants in %s", typ, file)
	}
	return out
}

// TestErrorTypesCoverTheTable keeps errorTypes in step with awserr: a type added there is counted by name.
func TestErrorTypesCoverTheTable(t *testing.T) {
	for _, c := range constantsOf(t, "../awserr/awserr.go", "Type") {
		if !slices.Contains(errorTypes, awserr.Type(c)) {
			t.Errorf("awserr type %s is missing from metrics.errorTypes: it would be counted as %q", c, Other)
		}
	}
}

// TestTokenReasonsCovered keeps the refusal reasons in step with token.Reason.
func TestTokenReasonsCovered(t *testing.T) {
	for _, r := range constantsOf(t, "../token/token.go", "Reason") {
		for transport, reasons := range rejectReasons {
			if !slices.Contains(reasons, r) {
				t.Errorf("token reason %s is missing from %s's refusal reasons", r, transport)
			}
		}
	}
}
