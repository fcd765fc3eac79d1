package flows

import (
	"fmt"

	"github.com/fabrictrace/fabrictrace/keys"
)

// SetGroup installs an address group: {"label":["10.0.0.0/8",...],...}.
func (e *Engine) SetGroup(name string, body []byte) error {
	if err := validName(name); err != nil {
		return err
	}
	g, err := keys.CompileGroup(name, body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.env.Groups.Put(name, g)
	return nil
}

// Group returns one address group's document.
func (e *Engine) Group(name string) (map[string][]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	doc, ok := e.env.Groups.Doc(name)
	if !ok {
		return nil, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	return doc, nil
}

// DeleteGroup removes an address group; group: keys on it go missing.
func (e *Engine) DeleteGroup(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.env.Groups.Delete(name) {
		return fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	return nil
}

// Groups returns every address group.
func (e *Engine) Groups() map[string]map[string][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.env.Groups.Docs()
}

// SetMap installs a map: {"label":["value",...],...}, e.g.
// {"web":["80","443"]}; map:tcpdestinationport:NAME then keys port 443 as
// web. A value listed under two labels is an error.
func (e *Engine) SetMap(name string, body []byte) error {
	if err := validName(name); err != nil {
		return err
	}
	m, err := keys.CompileMap(name, body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.env.Maps.Put(name, m)
	return nil
}

// Map returns one map's document.
func (e *Engine) Map(name string) (map[string][]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	doc, ok := e.env.Maps.Doc(name)
	if !ok {
		return nil, fmt.Errorf("map %q: %w", name, ErrNotFound)
	}
	return doc, nil
}

// DeleteMap removes a map; map: keys on it go missing.
func (e *Engine) DeleteMap(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.env.Maps.Delete(name) {
		return fmt.Errorf("map %q: %w", name, ErrNotFound)
	}
	return nil
}

// Maps returns every map.
func (e *Engine) Maps() map[string]map[string][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.env.Maps.Docs()
}
