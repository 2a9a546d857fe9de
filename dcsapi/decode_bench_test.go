package dcsapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func benchPage(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"time":"2026-11-28T10:00:00.123Z","count":`)
	fmt.Fprintf(&b, "%d", n)
	b.WriteString(`,"clients":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%d","addr":"10.0.%d.%d:%d","fd":"%d","name":"orders-api-%d","cmd":"get","age":%d,"idle":%d,"db":"0","flags":"N","sub":0,"psub":0,"multi":-1,"qbuf":26,"qbuf_free":32742,"obl":0,"oll":0,"omem":0,"events":"r","network":"ipv4","peer":"192.168.0.5:6379","user":"default"}`,
			1000+i, i%7, i%200, 20000+i, 10+i, i%5, 3600+i, i%90)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func BenchmarkDecodeClientList1000(b *testing.B) {
	page := benchPage(1000)
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		var l ClientList
		if err := json.Unmarshal(page, &l); err != nil || len(l.Clients) != 1000 {
			b.Fatal(err)
		}
	}
}
