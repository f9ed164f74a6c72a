package metrics

import (
	"reflect"
	"testing"

	"github.com/domo-framework/domo/broker"
)

// TestEveryBrokerCounterExported: each broker.Counters field has its
// domo_broker_<name>_total series, reading that field.
func TestEveryBrokerCounterExported(t *testing.T) {
	typ := reflect.TypeFor[broker.Counters]()
	if len(brokerCounters) != typ.NumField() {
		t.Fatalf("%d broker counters exported; broker.Counters has %d fields", len(brokerCounters), typ.NumField())
	}
	var c broker.Counters
	v := reflect.ValueOf(&c).Elem()
	for i := range typ.NumField() {
		v.Field(i).SetUint(uint64(1000 + i)) // a distinct value per field
	}
	seen := map[uint64]string{}
	for _, k := range brokerCounters {
		got := k.get(&c)
		if got < 1000 || got >= uint64(1000+typ.NumField()) {
			t.Errorf("counter %s reads %d, no field", k.name, got)
			continue
		}
		if other, ok := seen[got]; ok {
			t.Errorf("counters %s and %s read the same field %s", other, k.name, typ.Field(int(got-1000)).Name)
		}
		seen[got] = k.name
	}
}
