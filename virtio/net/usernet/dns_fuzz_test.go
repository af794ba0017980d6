package usernet

import (
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// FuzzDNSAnswer feeds the gateway's DNS server what a guest could send.
// Without a name server nothing leaves the process; a reply, when there
// is one, must parse as a response to the query's ID.
func FuzzDNSAnswer(f *testing.F) {
	for _, q := range [][]byte{
		query(nil, 1, "host."+Zone, dnsmessage.TypeA),
		query(nil, 2, "nope."+Zone, dnsmessage.TypeAAAA),
		query(nil, 3, "example.com.", dnsmessage.TypeMX),
		{0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0},
	} {
		f.Add(q)
	}
	d := newDNSServer("")
	f.Fuzz(func(t *testing.T, q []byte) {
		r := d.answer(q, false)
		if r == nil {
			return
		}
		var p dnsmessage.Parser
		qh, err := p.Start(q)
		if err != nil {
			t.Fatalf("a reply to a query that does not parse: %x", q)
		}
		var m dnsmessage.Message
		if err := m.Unpack(r); err != nil {
			t.Fatalf("reply %x does not parse: %v", r, err)
		}
		if !m.Header.Response || m.Header.ID != qh.ID {
			t.Fatalf("reply header %+v to query ID %d", m.Header, qh.ID)
		}
	})
}
