package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// runReduce writes to outPath the model at modelPath without its documentation strings.
func runReduce(modelPath, outPath string) error {
	raw, err := readModel(modelPath)
	if err != nil {
		return err
	}
	out, err := reduce(raw)
	if err != nil {
		return err
	}
	return os.WriteFile(outPath, out, 0o644)
}

// readModel reads a model file, gunzipping it when its name ends in .gz (botocore ships its models so).
func readModel(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(path, ".gz") {
		return raw, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return io.ReadAll(zr)
}

// dropped are the keys reduce removes: prose for people, which neither gen nor any test reads.
var dropped = map[string]bool{"documentation": true, "documentationUrl": true}

// nameMaps are the objects whose keys are names chosen by the model (operations, shapes, a structure's
// members), not keywords: a member that happened to be called "documentation" stays.
var nameMaps = map[string]bool{"operations": true, "shapes": true, "members": true}

// reduce returns the model in raw without its documentation strings, indented two spaces, with every
// other key and value as the model has them, in the model's order (member order matters to gen). The
// output depends only on the model's content, not on its formatting, so reducing a copy gives the copy.
func reduce(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b bytes.Buffer
	if err := reduceValue(dec, &b, ""); err != nil {
		return nil, fmt.Errorf("reduce model: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("reduce model: data after the top-level value")
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// reduceValue copies the next JSON value of dec to b, compact, dropping documentation keys. parentKey is
// the key under which the value sits ("" for the top level and list items).
func reduceValue(dec *json.Decoder, b *bytes.Buffer, parentKey string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		b.WriteByte('{')
		first := true
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key := kt.(string)
			if dropped[key] && !nameMaps[parentKey] {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			if err := writeJSON(b, key); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := reduceValue(dec, b, key); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		b.WriteByte('}')
		return err
	case json.Delim('['):
		b.WriteByte('[')
		for i := 0; dec.More(); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := reduceValue(dec, b, ""); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		b.WriteByte(']')
		return err
	default:
		return writeJSON(b, tok)
	}
}

// writeJSON writes a scalar (string, json.Number, bool or nil) as JSON, leaving <, > and & as they are.
func writeJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}
