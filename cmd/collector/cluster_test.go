package main

import (
	"io"
	"strings"
	"testing"
)

// The scale-out flags refuse what cannot work, saying what would.
func TestClusterFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "ingest"}, ""},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "engine", "-node", "e1", "-nats-partitions", "16"}, ""},
		{[]string{"-role", "engine"}, "needs -nats URL"},
		{[]string{"-nats", "nats://127.0.0.1:4222"}, "want ingest, engine or api"},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "api"}, ""},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "all"}, "all is still to come"},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "engine", "-nats-partitions", "300"}, "want 1 to 256"},
	} {
		_, err := parseFlags(c.args, io.Discard)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
