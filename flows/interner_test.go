package flows_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
)

// Strings that no flow holds any more are released: after more distinct
// key strings than the interner holds (65,536) have come and gone, new
// keys are taken again (they went missing for good before).
func TestInternedStringsAreReleased(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	e := flows.New(flows.Config{Now: clock.now})
	if err := e.SetFlow("k", keys.Definition{Keys: `concat:-:ipsource:ipdestination`, T: 1}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	frame := sflowtest.SynAckFrame()
	seq := uint32(0)
	send := func(i int) {
		seq++
		frame.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, err := dec.Decode(datagram(frame, decode.Port{Value: 5}, seq), e); err != nil {
			t.Fatal(err)
		}
	}
	// Each source makes a string (its key):
	// 70,000 of them fill the interner and are refused past it.
	for i := range 70_000 {
		send(i)
	}
	before := e.Stats().StringsRefused
	if before == 0 {
		t.Fatal("the interner refused nothing: the test no longer fills it")
	}
	// They fall idle and are swept away, and their strings with them.
	clock.t = clock.t.Add(time.Minute)
	e.Sweep()
	send(1_000_000)
	af, err := e.ActiveFlows("k", func(netip.Addr) bool { return true }, 10, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(af) != 1 || af[0].Key != "10.15.66.64-10.2.2.3" {
		t.Errorf("a new key after the old ones went: %+v (refused %d, then %d)", af, before, e.Stats().StringsRefused)
	}
	if e.Stats().StringsRefused != before {
		t.Errorf("refused %d more after the sweep", e.Stats().StringsRefused-before)
	}
}
