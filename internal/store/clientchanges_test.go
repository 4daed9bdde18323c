package store

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestClientChanges: every field of a Client but its ID and CreatedAt
// is a setting Changes compares, so a field added later cannot change
// unseen; nil and empty are the same.
func TestClientChanges(t *testing.T) {
	base := &Client{ID: "bank", RedirectURIs: []string{"https://bank.example/cb"}}
	same := &Client{ID: "bank", RedirectURIs: []string{"https://bank.example/cb"}, Claims: []string{}, SecretHash: []byte{},
		CreatedAt: time.Now()}
	if got := base.Changes(same); len(got) != 0 {
		t.Errorf("Changes of the same settings = %v, want none", got)
	}
	typ := reflect.TypeFor[Client]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "ID" || f.Name == "CreatedAt" {
			continue
		}
		o := *base
		v := reflect.ValueOf(&o).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Slice:
			v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), reflect.Zero(v.Type().Elem())))
			if f.Name == "RedirectURIs" {
				v.Set(reflect.ValueOf([]string{"https://bank.example/other"}))
			}
		default:
			t.Fatalf("field %s of kind %s: teach the test to change it", f.Name, v.Kind())
		}
		if got := base.Changes(&o); len(got) != 1 || slices.Contains(got, "") {
			t.Errorf("%s changed: Changes = %v, want it named", f.Name, got)
		}
	}
}
