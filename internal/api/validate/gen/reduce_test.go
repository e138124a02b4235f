package main

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// The model's size, pinned: a reduction (or a hand edit of the copy) that loses an operation or a shape
// fails here even where no full model is at hand to compare with.
const (
	modelOperations = 39
	modelShapes     = 243
)

// TestReducedModelIsComplete checks the repository's copy of the model on its own: every operation with its
// HTTP binding, input, output and errors, every shape, every reference between them resolving, and no
// documentation left.
func TestReducedModelIsComplete(t *testing.T) {
	raw, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 200<<10 {
		t.Errorf("the reduced model is %d KB; it should stay well under 200 KB", len(raw)>>10)
	}
	if bytes.Contains(raw, []byte(`"documentation"`)) {
		t.Error("the reduced model still has documentation strings")
	}
	var m struct {
		Metadata   map[string]any `json:"metadata"`
		Operations map[string]struct {
			Name string `json:"name"`
			HTTP struct {
				Method       string `json:"method"`
				RequestURI   string `json:"requestUri"`
				ResponseCode int    `json:"responseCode"`
			} `json:"http"`
			Input  *ref  `json:"input"`
			Output *ref  `json:"output"`
			Errors []ref `json:"errors"`
		} `json:"operations"`
		Shapes map[string]struct {
			Type      string                        `json:"type"`
			Members   map[string]modelMember        `json:"members"`
			Member    *ref                          `json:"member"`
			Key       *ref                          `json:"key"`
			Value     *ref                          `json:"value"`
			Exception bool                          `json:"exception"`
			Error     *struct{ HTTPStatusCode int } `json:"error"`
		} `json:"shapes"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Operations) != modelOperations || len(m.Shapes) != modelShapes {
		t.Errorf("%d operations and %d shapes, want %d and %d", len(m.Operations), len(m.Shapes), modelOperations, modelShapes)
	}
	for _, k := range []string{"apiVersion", "protocol", "signingName", "uid"} {
		if m.Metadata[k] == nil {
			t.Errorf("metadata.%s is missing", k)
		}
	}
	resolves := func(where string, r *ref) {
		t.Helper()
		if r == nil {
			return
		}
		if _, ok := m.Shapes[r.Shape]; !ok {
			t.Errorf("%s refers to %q, which is not a shape", where, r.Shape)
		}
	}
	for name, op := range m.Operations {
		if op.Name != name || op.HTTP.Method == "" || !strings.HasPrefix(op.HTTP.RequestURI, "/") || op.HTTP.ResponseCode == 0 {
			t.Errorf("%s: name or HTTP binding missing: %+v", name, op)
		}
		if op.Input == nil || op.Output == nil || len(op.Errors) == 0 {
			t.Errorf("%s: input, output or errors missing", name)
		}
		resolves(name+" input", op.Input)
		resolves(name+" output", op.Output)
		for _, e := range op.Errors {
			resolves(name+" errors", &e)
			if s := m.Shapes[e.Shape]; !s.Exception || s.Error == nil || s.Error.HTTPStatusCode == 0 {
				t.Errorf("%s: error %s has no exception trait or status", name, e.Shape)
			}
		}
	}
	for name, s := range m.Shapes {
		if s.Type == "" {
			t.Errorf("shape %s has no type", name)
		}
		for mn, mem := range s.Members {
			resolves(name+"."+mn, &ref{Shape: mem.Shape})
		}
		resolves(name+" member", s.Member)
		resolves(name+" key", s.Key)
		resolves(name+" value", s.Value)
	}
}

// TestReducedModelMatchesFull reduces a full model and compares the result with the repository's copy, byte
// for byte, and their operations and shapes by name. It needs the full model, which is not part of the
// repository: point OPENSTAGE_IVS_MODEL at it (the botocore file the AWS CLI installs will do, gzipped or
// not, if its version carries the same model).
func TestReducedModelMatchesFull(t *testing.T) {
	full := os.Getenv("OPENSTAGE_IVS_MODEL")
	if full == "" {
		t.Skip("OPENSTAGE_IVS_MODEL is not set: no full model to compare the reduced copy with")
	}
	raw, err := readModel(full)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := reduce(raw)
	if err != nil {
		t.Fatal(err)
	}
	type names struct {
		Operations map[string]json.RawMessage `json:"operations"`
		Shapes     map[string]json.RawMessage `json:"shapes"`
	}
	var f, r names
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &r); err != nil {
		t.Fatal(err)
	}
	for what, pair := range map[string][2]map[string]json.RawMessage{"operations": {f.Operations, r.Operations}, "shapes": {f.Shapes, r.Shapes}} {
		for name := range pair[0] {
			if _, ok := pair[1][name]; !ok {
				t.Errorf("the reduced model lacks %s %s", what, name)
			}
		}
		for name := range pair[1] {
			if _, ok := pair[0][name]; !ok {
				t.Errorf("the reduced model has %s %s, which the full model does not", what, name)
			}
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the reduction of %s: run go run ./gen -reduce -model %s -out model/ivs-realtime-2020-07-14.min.json, then go generate", modelPath, full, full)
	}
}

func TestReduce(t *testing.T) {
	in := `{"version":"2.0","documentation":"<p>service</p>","metadata":{"uid":"x"},
	  "operations":{"Op":{"name":"Op","http":{"method":"POST","requestUri":"/Op"},"input":{"shape":"In"},"documentation":"<p>op</p>","documentationUrl":"https://example.com"}},
	  "shapes":{
	    "In":{"type":"structure","required":["zeta"],"members":{
	      "zeta":{"shape":"S","documentation":"<p>z &amp; <b>z</b></p>"},
	      "documentation":{"shape":"S","documentation":"a member named documentation stays"},
	      "alpha":{"shape":"N","locationName":"Alpha"}},
	      "documentation":"<p>input</p>"},
	    "S":{"type":"string","pattern":"^[a-z<>&]+$","max":1.5e3,"enum":["b","a"]},
	    "N":{"type":"integer","min":0,"max":4294967297}}}`
	out, err := reduce([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, gone := range []string{"<p>", "documentationUrl", "a member named"} {
		if strings.Contains(s, gone) {
			t.Errorf("%q survived:\n%s", gone, s)
		}
	}
	for _, kept := range []string{`"documentation": {`, `"pattern": "^[a-z<>&]+$"`, `"max": 1.5e3`, `"max": 4294967297`, `"locationName": "Alpha"`} {
		if !strings.Contains(s, kept) {
			t.Errorf("%q is missing:\n%s", kept, s)
		}
	}
	order := []string{`"zeta"`, `"documentation": {`, `"alpha"`, `"b"`, `"a"`}
	idx := make([]int, len(order))
	for i, k := range order {
		idx[i] = strings.Index(s, k)
	}
	if !slices.IsSorted(idx) || idx[0] < 0 {
		t.Errorf("member or enum order lost (%v):\n%s", idx, s)
	}
	again, err := reduce(out)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("reducing a reduced model changed it (err %v):\n%s", err, again)
	}
	// A reduced model still generates the same table as the full one.
	a, err := generate([]byte(in), "m.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate(out, "m.json")
	if err != nil || !bytes.Equal(a, b) {
		t.Errorf("the reduced model generates another table (err %v)", err)
	}
	for _, bad := range []string{`{"a":`, `{"a":1} {}`, `[1,]`} {
		if _, err := reduce([]byte(bad)); err == nil {
			t.Errorf("reduce(%q) succeeded", bad)
		}
	}
}
