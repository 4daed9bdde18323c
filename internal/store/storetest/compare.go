package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// diff reports, one line per field, how got differs from want; "" when
// they agree under the store's rules:
//   - times are the same instant, and got is in UTC unless zero;
//   - json.RawMessage values hold equal JSON (whitespace and key order
//     aside), and empty equals nil;
//   - byte slices have equal contents (empty equals nil);
//   - every other slice and map has equal elements and the same nil-ness.
func diff(want, got any) string {
	var d differ
	d.walk("", reflect.ValueOf(want), reflect.ValueOf(got))
	return strings.Join(d.out, "\n")
}

type differ struct{ out []string }

func (d *differ) report(path, format string, args ...any) {
	if path == "" {
		path = "value"
	}
	d.out = append(d.out, path+": "+fmt.Sprintf(format, args...))
}

func (d *differ) walk(path string, w, g reflect.Value) {
	if !w.IsValid() || !g.IsValid() {
		if w.IsValid() != g.IsValid() {
			d.report(path, "got %v, want %v", g, w)
		}
		return
	}
	if w.Type() != g.Type() {
		d.report(path, "got type %v, want %v", g.Type(), w.Type())
		return
	}
	switch w.Type() {
	case reflect.TypeFor[time.Time]():
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		switch {
		case wt.IsZero() != gt.IsZero() || !wt.Equal(gt):
			d.report(path, "got %v, want %v", gt, wt)
		case !gt.IsZero() && gt.Location() != time.UTC:
			d.report(path, "got %v, want the time in UTC", gt)
		}
		return
	case reflect.TypeFor[json.RawMessage]():
		if msg := jsonDiff(w.Bytes(), g.Bytes()); msg != "" {
			d.report(path, "%s", msg)
		}
		return
	case reflect.TypeFor[[]byte]():
		if !bytes.Equal(w.Bytes(), g.Bytes()) {
			d.report(path, "got %x, want %x", g.Bytes(), w.Bytes())
		}
		return
	}
	switch w.Kind() {
	case reflect.Pointer:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				d.report(path, "got %v, want %v", g, w)
			}
			return
		}
		d.walk(path, w.Elem(), g.Elem())
	case reflect.Struct:
		for i := range w.NumField() {
			f := w.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			d.walk(join(path, f.Name), w.Field(i), g.Field(i))
		}
	case reflect.Slice:
		if w.IsNil() != g.IsNil() {
			d.report(path, "got %s, want %s", nilness(g), nilness(w))
			return
		}
		if w.Len() != g.Len() {
			d.report(path, "got %d elements %v, want %d %v", g.Len(), g, w.Len(), w)
			return
		}
		for i := range w.Len() {
			d.walk(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i))
		}
	case reflect.Map:
		if w.IsNil() != g.IsNil() {
			d.report(path, "got %s, want %s", nilness(g), nilness(w))
			return
		}
		keys := func(m reflect.Value) []string {
			var ks []string
			for _, k := range m.MapKeys() {
				ks = append(ks, fmt.Sprint(k))
			}
			slices.Sort(ks)
			return ks
		}
		if wk, gk := keys(w), keys(g); !slices.Equal(wk, gk) {
			d.report(path, "got keys %v, want %v", gk, wk)
			return
		}
		for _, k := range w.MapKeys() {
			d.walk(fmt.Sprintf("%s[%v]", path, k), w.MapIndex(k), g.MapIndex(k))
		}
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			d.report(path, "got %#v, want %#v", g, w)
		}
	}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func nilness(v reflect.Value) string {
	switch {
	case v.IsNil():
		return "nil"
	case v.Len() == 0:
		return "empty non-nil"
	default:
		return fmt.Sprintf("%d elements", v.Len())
	}
}

// jsonDiff compares two JSON documents by meaning.
func jsonDiff(want, got []byte) string {
	if len(want) == 0 || len(got) == 0 {
		if len(want) != len(got) {
			return fmt.Sprintf("got JSON %q, want %q", got, want)
		}
		return ""
	}
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		return fmt.Sprintf("want is not JSON: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Sprintf("got %q, not JSON: %v", got, err)
	}
	if !reflect.DeepEqual(w, g) {
		return fmt.Sprintf("got JSON %s, want %s", got, want)
	}
	return ""
}
