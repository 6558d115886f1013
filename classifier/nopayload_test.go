package classifier

import (
	"reflect"
	"testing"

	"github.com/tpwatch/tpwatch/capture"
)

// TestNoPayloadIsKept holds the promise that nothing of a packet's payload
// is stored or exported: the decoded packet, the flow table entry and the
// record handed to sinks are made of fixed-size numbers and arrays only, so
// no field can hold (or point at) packet bytes.
func TestNoPayloadIsKept(t *testing.T) {
	for _, v := range []any{capture.Packet{}, entry{}, entryMeta{}, FlowRecord{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !fixedSize(f.Type) {
				t.Errorf("%s.%s is a %s: it could hold packet bytes", typ.Name(), f.Name, f.Type)
			}
		}
	}
}

func fixedSize(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Array:
		return fixedSize(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !fixedSize(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}
