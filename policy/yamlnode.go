package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// nodeDecoder walks a yaml.Node tree by hand rather than decoding into
// structs: it keeps every line and column for the error messages, checks
// keys strictly, and carries on after an error so that all of them are
// reported at once.
type nodeDecoder struct {
	file string
	errs ConfigErrors
}

func (d *nodeDecoder) errorf(n *yaml.Node, format string, args ...any) {
	e := ConfigError{File: d.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// err returns the collected errors in file order, or nil.
func (d *nodeDecoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return d.errs
}

// parseDocument returns the top node of the single YAML document in data,
// or nil for an empty document.
func (d *nodeDecoder) parseDocument(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntaxError(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "a second YAML document: keep one document per file (remove the ---)")
	} else if !errors.Is(err, io.EOF) {
		d.syntaxError(err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return resolve(doc.Content[0])
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into a ConfigError.
func (d *nodeDecoder) syntaxError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := ConfigError{File: d.file, Msg: "YAML syntax: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if line, convErr := strconv.Atoi(num); convErr == nil {
				e.Line, e.Msg = line, "YAML syntax: "+after
			}
		}
	}
	d.errs = append(d.errs, e)
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// mapping calls fn for each key of the mapping n in file order. A key not
// in valid is an error naming the nearest valid key. An empty value (null)
// is an empty mapping.
func (d *nodeDecoder) mapping(n *yaml.Node, what string, valid []string, fn func(key string, k, v *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: want a mapping (key: value lines)", what)
		return
	}
	// yaml.v3 finds duplicate keys only when decoding into Go values; a
	// second "roles:" or "agent:" must not silently add to or replace the
	// first.
	firstLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s: keys must be plain names", what)
			continue
		}
		if line, dup := firstLine[k.Value]; dup {
			d.errorf(k, "duplicate key %q in %s (first at line %d): merge the two", k.Value, what, line)
			continue
		}
		firstLine[k.Value] = k.Line
		if valid != nil && !contains(valid, k.Value) {
			d.errorf(k, "unknown key %q in %s%s", k.Value, what, suggest(k.Value, valid))
			continue
		}
		fn(k.Value, k, v)
	}
}

// sequence returns the items of the list n; an empty value (null) is an
// empty list.
func (d *nodeDecoder) sequence(n *yaml.Node, what, example string) []*yaml.Node {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: want a list such as %s", what, example)
		return nil
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, item := range n.Content {
		items[i] = resolve(item)
	}
	return items
}

// scalar returns the text of a scalar node.
func (d *nodeDecoder) scalar(n *yaml.Node, what string) (string, bool) {
	if isNull(n) {
		d.errorf(n, "%s: empty, give a value", what)
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: want a single value, not a list or mapping", what)
		return "", false
	}
	return n.Value, true
}

// boolean returns the value of a true/false scalar. YAML 1.1's yes/no/on/off
// are refused: yaml.v3 reads them as strings, and silently taking "no" as
// true would be worse than an error.
func (d *nodeDecoder) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	d.errorf(n, "%s: want true or false, got %q", what, n.Value)
	return false, false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
