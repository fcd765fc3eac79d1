package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/nats-io/nats.go/jetstream"
)

// DefinitionsBucket is the KV bucket that holds the cluster's definitions:
// what REST PUTs on an api node (flows, thresholds, groups, maps, the
// topology), which every engine and api node watches and applies.
const DefinitionsBucket = "FABRICTRACE_DEFINITIONS"

// definitionKinds are the kinds a definition can be, as the store names them.
var definitionKinds = []string{"flow", "threshold", "group", "map", "topology"}

// Definitions is the definitions bucket. It is a web.Saver: an api node's
// REST writes land in it, and survive its restarts.
type Definitions struct {
	kv jetstream.KeyValue
}

// OpenDefinitions joins (or makes) the definitions bucket.
func OpenDefinitions(ctx context.Context, js jetstream.JetStream) (*Definitions, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DefinitionsBucket, History: 1,
		Description: "fabrictrace definitions: flows, thresholds, groups, maps, topology"})
	if err != nil {
		return nil, fmt.Errorf("definitions bucket %s: %w", DefinitionsBucket, err)
	}
	return &Definitions{kv: kv}, nil
}

// definitionKey is kind.name, the name in base64url: a flow's name may hold
// characters a KV key may not.
func definitionKey(kind, name string) string {
	if kind == "topology" {
		return kind
	}
	return kind + "." + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// parseDefinitionKey reverses definitionKey.
func parseDefinitionKey(key string) (kind, name string, err error) {
	if key == "topology" {
		return key, "", nil
	}
	kind, enc, ok := strings.Cut(key, ".")
	if !ok || !knownKind(kind) {
		return "", "", fmt.Errorf("definition key %q: want KIND.NAME, KIND one of %s", key, strings.Join(definitionKinds, ", "))
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", "", fmt.Errorf("definition key %q: name not base64url: %w", key, err)
	}
	return kind, string(b), nil
}

func knownKind(kind string) bool {
	for _, k := range definitionKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// PutDefinition keeps a definition's PUT body (web.Saver).
func (d *Definitions) PutDefinition(kind, name string, body []byte) error {
	if !knownKind(kind) {
		return fmt.Errorf("definition kind %q: want one of %s", kind, strings.Join(definitionKinds, ", "))
	}
	_, err := d.kv.Put(context.Background(), definitionKey(kind, name), body)
	return err
}

// SeedDefinition keeps a definition unless the bucket has one of that kind
// and name already: what a -define file says at start does not undo what
// users PUT since.
func (d *Definitions) SeedDefinition(kind, name string, body []byte) error {
	if !knownKind(kind) {
		return fmt.Errorf("definition kind %q: want one of %s", kind, strings.Join(definitionKinds, ", "))
	}
	_, err := d.kv.Create(context.Background(), definitionKey(kind, name), body)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	return err
}

// DeleteDefinition forgets a definition (web.Saver).
func (d *Definitions) DeleteDefinition(kind, name string) error {
	err := d.kv.Delete(context.Background(), definitionKey(kind, name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// Definer is what a watch applies definitions to: an engine (package
// engine's Engine is one).
type Definer interface {
	ApplyDefinition(kind, name string, body []byte) error
	RemoveDefinition(kind, name string) error
}

// Watch applies every definition the bucket holds to d, then each change,
// until ctx ends. ready is called once what the bucket held when the watch
// began has been applied. bad is told of what could not be applied (a body
// the engine refuses); the watch goes on. Removing what d does not have is
// not an error.
func (d *Definitions) Watch(ctx context.Context, to Definer, ready func(), bad func(key string, err error)) error {
	w, err := d.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", DefinitionsBucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil { // what the bucket held is applied
				if ready != nil {
					ready()
				}
				continue
			}
			kind, name, err := parseDefinitionKey(e.Key())
			if err == nil {
				if e.Operation() == jetstream.KeyValuePut {
					err = to.ApplyDefinition(kind, name, e.Value())
				} else if err = to.RemoveDefinition(kind, name); errors.Is(err, flows.ErrNotFound) {
					err = nil
				}
			}
			if err != nil && bad != nil {
				bad(e.Key(), err)
			}
		}
	}
}
