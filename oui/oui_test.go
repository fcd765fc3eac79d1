package oui

import "testing"

func TestName(t *testing.T) {
	for mac, want := range map[uint64]string{
		0x00D0EF_123456: "IGT",
		0x002272_000001: "American Micro-Fuel Device Corp.",
		0x086195_FFFFFF: "Rockwell Automation",
	} {
		if got, ok := Name(mac); !ok || got != want {
			t.Errorf("%012X: %q %v, want %q", mac, got, ok, want)
		}
	}
	// A locally administered address (bit 1 of the first byte) is no one's.
	if got, ok := Name(0x02_0000_000001); ok {
		t.Errorf("a locally administered MAC named %q", got)
	}
	if n := Len(); n < 30000 {
		t.Errorf("%d assignments in the table, want the registry's 30,000 and more", n)
	}
}
