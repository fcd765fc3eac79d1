package main

import (
	"encoding/json"
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
// takes them; they are kept in a temporary -define file when none is given.
func applyConfigFile(fs *flag.FlagSet, name string) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("-config: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("-config %s: %w", name, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	defs := map[string]any{}
	for k, v := range doc {
		switch k {
		case "flows", "thresholds", "groups":
			defs[k] = v
			continue
		case "config", "print-config":
			return fmt.Errorf("-config %s: %q cannot be set in the file", name, k)
		}
		f := fs.Lookup(k)
		if f == nil {
			return fmt.Errorf("-config %s: unknown setting %q (settings are named as the flags)", name, k)
		}
		if set[k] {
			continue // the command line wins
		}
		if err := fs.Set(k, fmt.Sprint(v)); err != nil {
			return fmt.Errorf("-config %s: %s: %w", name, k, err)
		}
	}
	if len(defs) > 0 && !set["define"] && fs.Lookup("define").Value.String() == "" {
		j, _ := json.Marshal(defs)
		tmp, err := os.CreateTemp("", "fabrictrace-define-*.json")
		if err != nil {
			return err
		}
		tmp.Write(j)
		tmp.Close()
		fs.Set("define", tmp.Name())
	}
	return nil
}

// printConfig writes the effective settings as TOML, one per flag.
func printConfig(w io.Writer, fs *flag.FlagSet) {
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
}
