package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// applyConfigFile sets, from a TOML file, every flag the command line left
// unset: its keys are the flags' names. Tables [flows.NAME],
// [thresholds.NAME] and [groups.NAME] hold startup definitions, as -define
// takes them: it returns them, for the engine once it exists (and for
// -print-config), nil if there are none.
func applyConfigFile(fs *flag.FlagSet, name string) (map[string]any, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("-config: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("-config %s:%d:%d: %s", name, row, col, de.Error())
		}
		return nil, fmt.Errorf("-config %s: %w", name, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var defs map[string]any
	for k, v := range doc {
		at := fmt.Sprintf("-config %s:%d", name, lineOf(b, k))
		switch k {
		case "flows", "thresholds", "groups":
			if _, ok := v.(map[string]any); !ok {
				return nil, fmt.Errorf("%s: %s: want a table of definitions by name ([%s.NAME])", at, k, k)
			}
			if defs == nil {
				defs = map[string]any{}
			}
			defs[k] = v
			continue
		case "config", "print-config":
			return nil, fmt.Errorf("%s: %q cannot be set in the file", at, k)
		}
		f := fs.Lookup(k)
		if f == nil {
			return nil, fmt.Errorf("%s: unknown setting %q (settings are named as the flags)", at, k)
		}
		if set[k] {
			continue // the command line wins
		}
		if err := fs.Set(k, fmt.Sprint(v)); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", at, k, err)
		}
	}
	return defs, nil
}

// lineOf is the line where a key or table is set, for errors: 0 if it
// cannot be told.
func lineOf(b []byte, key string) int {
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, key); ok {
			if rest = strings.TrimSpace(rest); strings.HasPrefix(rest, "=") {
				return i + 1
			}
		}
		if strings.HasPrefix(l, "["+key+".") || l == "["+key+"]" {
			return i + 1
		}
	}
	return 0
}

// configDefinitions is the -config file's definitions as -define's JSON.
func configDefinitions(defs map[string]any) []byte {
	j, _ := json.Marshal(defs) // from TOML: always JSON
	return j
}

// printConfig writes the effective settings as TOML, one per flag, then the
// -config file's definitions as its tables.
func printConfig(w io.Writer, fs *flag.FlagSet, defs map[string]any) {
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "config", "print-config":
			return
		}
		v := f.Value.String()
		if g, ok := f.Value.(flag.Getter); ok {
			switch x := g.Get().(type) {
			case bool, int, uint, int64, uint64, float64:
				lines = append(lines, fmt.Sprintf("%s = %v", f.Name, x))
				return
			}
		}
		if f.Name == "token" && v != "" {
			v = "(set)" // never print the secret
		}
		lines = append(lines, fmt.Sprintf("%s = %q", f.Name, v))
	})
	sort.Strings(lines)
	fmt.Fprintln(w, "# fabrictrace collector: effective settings")
	fmt.Fprintln(w, strings.Join(lines, "\n"))
	if len(defs) > 0 {
		b, err := toml.Marshal(defs)
		if err != nil {
			fmt.Fprintf(w, "# definitions not printable: %v\n", err)
			return
		}
		fmt.Fprintf(w, "\n%s", b)
	}
}
