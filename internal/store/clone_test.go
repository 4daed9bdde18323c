package store

import (
	"reflect"
	"testing"
)

// TestCloneSharesNothing fills every slice field of each record with a
// value, clones it, and checks that no slice of the clone shares its
// array with the original: a field added later without a line in Clone
// fails here.
func TestCloneSharesNothing(t *testing.T) {
	tests := []struct {
		name  string
		rec   any
		clone func(any) any
	}{
		{"Client", &Client{}, func(v any) any { return v.(*Client).Clone() }},
		{"Person", &Person{}, func(v any) any { return v.(*Person).Clone() }},
		{"AuthRequest", &AuthRequest{}, func(v any) any { return v.(*AuthRequest).Clone() }},
		{"Session", &Session{}, func(v any) any { return v.(*Session).Clone() }},
		{"AuthCode", &AuthCode{}, func(v any) any { return v.(*AuthCode).Clone() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := reflect.ValueOf(tt.rec).Elem()
			slicesSeen := 0
			for i := range orig.NumField() {
				f := orig.Field(i)
				if f.Kind() == reflect.Map {
					t.Fatalf("%s has a map field; teach Clone and this test about it", orig.Type().Field(i).Name)
				}
				if f.Kind() == reflect.Slice {
					f.Set(reflect.MakeSlice(f.Type(), 1, 1))
					slicesSeen++
				}
			}
			if slicesSeen == 0 {
				t.Fatal("no slice fields: the test checks nothing")
			}
			got := reflect.ValueOf(tt.clone(tt.rec)).Elem()
			if !reflect.DeepEqual(got.Interface(), orig.Interface()) {
				t.Errorf("clone differs from the original")
			}
			for i := range orig.NumField() {
				if orig.Field(i).Kind() == reflect.Slice && got.Field(i).Pointer() == orig.Field(i).Pointer() {
					t.Errorf("field %s shares its array with the original", orig.Type().Field(i).Name)
				}
			}
		})
	}
}
