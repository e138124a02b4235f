package validate

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// assign stores the parsed body v (maps, slices, strings, bools and json.Numbers, as parseBody gives) in
// dst, as json.Unmarshal of the body would, without parsing the body a second time: that second parse was
// a third of a GetParticipant's validation (profiled). It reports false, having stored possibly part of
// it, for any Go type or tag it does not handle exactly like encoding/json; the caller then decodes dst
// afresh with encoding/json. FuzzDecodeDirect checks it against encoding/json.
func assign(dst reflect.Value, v any) bool {
	switch dst.Kind() {
	case reflect.Pointer:
		if v == nil {
			dst.SetZero()
			return true
		}
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return assign(dst.Elem(), v)
	case reflect.String:
		s, ok := v.(string)
		if ok {
			dst.SetString(s)
		}
		return ok
	case reflect.Bool:
		b, ok := v.(bool)
		if ok {
			dst.SetBool(b)
		}
		return ok
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		i, err := strconv.ParseInt(string(n), 10, dst.Type().Bits())
		if err != nil {
			return false
		}
		dst.SetInt(i)
		return true
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(n), dst.Type().Bits())
		if err != nil {
			return false
		}
		dst.SetFloat(f)
		return true
	case reflect.Slice:
		items, ok := v.([]any)
		if !ok || dst.Type().Elem().Kind() == reflect.Uint8 { // []byte is base64 in encoding/json
			return false
		}
		s := reflect.MakeSlice(dst.Type(), len(items), len(items))
		for i, item := range items {
			if !assign(s.Index(i), item) {
				return false
			}
		}
		dst.Set(s)
		return true
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok || dst.Type().Key().Kind() != reflect.String || dst.Type().Key() != reflect.TypeFor[string]() {
			return false
		}
		m := reflect.MakeMapWithSize(dst.Type(), len(obj))
		elem := dst.Type().Elem()
		for k, item := range obj {
			e := reflect.New(elem).Elem()
			if !assign(e, item) {
				return false
			}
			m.SetMapIndex(reflect.ValueOf(k), e)
		}
		dst.Set(m)
		return true
	case reflect.Interface:
		if dst.NumMethod() != 0 {
			return false
		}
		a, ok := plainJSON(v)
		if ok {
			if a == nil {
				dst.SetZero()
			} else {
				dst.Set(reflect.ValueOf(a))
			}
		}
		return ok
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		fields := fieldsOf(dst.Type())
		if fields == nil {
			return false
		}
		for k, item := range obj {
			idx, found := fields.byName[k]
			if !found {
				for name := range fields.byName {
					if strings.EqualFold(name, k) {
						return false // encoding/json would match it to this field, case-insensitively
					}
				}
				continue // ignored, as encoding/json ignores unknown keys
			}
			if !assign(dst.FieldByIndex(idx), item) {
				return false
			}
		}
		return true
	}
	return false
}

// plainJSON converts a parsed value to what json.Unmarshal gives into an interface: float64 numbers.
func plainJSON(v any) (any, bool) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			var ok bool
			if out[i], ok = plainJSON(item); !ok {
				return nil, false
			}
		}
		return out, true
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			a, ok := plainJSON(item)
			if !ok {
				return nil, false
			}
			out[k] = a
		}
		return out, true
	}
	return nil, false
}

// structFields maps a struct's JSON member names to its fields, embedded structs' fields included.
type structFields struct {
	byName map[string][]int
}

var fieldCache sync.Map // reflect.Type → *structFields (nil: a struct assign does not handle)

// fieldsOf returns the fields of t, or nil when t has what assign leaves to encoding/json: tag options
// other than omitempty, embedded pointers or non-structs, or two fields with one name.
func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{byName: map[string][]int{}}
	if !collectFields(t, nil, f) {
		f = nil
	}
	fieldCache.Store(t, f)
	return f
}

func collectFields(t reflect.Type, prefix []int, f *structFields) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if opts != "" && opts != "omitempty" {
			return false
		}
		index := append(append([]int(nil), prefix...), i)
		if sf.Anonymous && !hasTag {
			if sf.Type.Kind() != reflect.Struct {
				return false
			}
			if !collectFields(sf.Type, index, f) {
				return false
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := f.byName[name]; dup {
			return false
		}
		f.byName[name] = index
	}
	return true
}
