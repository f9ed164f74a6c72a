package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/domo-framework/domo/mdp"
)

func newDocsCmd() *cobra.Command {
	var (
		endpoint string
		asJSON   bool
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "docs [SERVICE]",
		Short: "Show the methods of a service (or of all) with their docs and request and reply schemas",
		Example: `  domo docs tea
  domo docs tea --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var name string
			if len(args) == 1 {
				name = args[0]
			}
			c, err := newClient(endpoint, "")
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			reply, err := c.Invoke(ctx, mdp.MMIDocs, []byte(name))
			if err != nil {
				return err
			}
			var contracts []mdp.ServiceContract
			if name != "" {
				var one mdp.ServiceContract
				err = json.Unmarshal(reply, &one)
				contracts = append(contracts, one)
			} else {
				err = json.Unmarshal(reply, &contracts)
			}
			if err != nil {
				return fmt.Errorf("%s: decode reply: %w", mdp.MMIDocs, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if name != "" {
					return enc.Encode(contracts[0])
				}
				return enc.Encode(contracts)
			}
			for i, sc := range contracts {
				if i > 0 {
					fmt.Fprintln(out)
				}
				if err := printContract(out, sc); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&endpoint, "broker", defaultBroker(), "broker endpoints, comma-separated ($DOMO_BROKER)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the contract as JSON (JSON Schemas included)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "deadline of the query")
	return cmd
}

// printContract prints a service's contract for a terminal: each method
// with its doc, and the fields of its request and reply.
func printContract(w io.Writer, sc mdp.ServiceContract) error {
	fmt.Fprintf(w, "SERVICE %s", sc.Service)
	if sc.Digest != "" {
		fmt.Fprintf(w, " (contract %s)", shortDigest(sc.Digest))
	}
	fmt.Fprintln(w)
	if sc.Doc != "" {
		fmt.Fprintf(w, "  %s\n", sc.Doc)
	}
	if len(sc.Methods) == 0 {
		fmt.Fprintln(w, "  no contract: its workers describe no methods")
		return nil
	}
	for _, m := range sc.Methods {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%s.%s", sc.Service, m.Name)
		if m.Streaming {
			fmt.Fprint(w, "  (streams partial replies)")
		}
		fmt.Fprintln(w)
		if m.Doc != "" {
			fmt.Fprintf(w, "  %s\n", m.Doc)
		}
		printSchema(w, "request", m.Request)
		printSchema(w, "reply", m.Reply)
	}
	return nil
}

// shortDigest returns the algorithm and the first 12 hex digits of a digest.
func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

func printSchema(w io.Writer, what string, raw json.RawMessage) {
	if len(raw) == 0 {
		fmt.Fprintf(w, "  %s: any payload (no schema)\n", what)
		return
	}
	var root jsonSchema
	if err := json.Unmarshal(raw, &root); err != nil {
		fmt.Fprintf(w, "  %s: unreadable schema: %v\n", what, err)
		return
	}
	s := root.resolve(&root)
	fields, prefix, path := s, "", refPath(nil, &root)
	if s.Items != nil && !s.isObject() { // an array: the fields of its items
		fields, prefix, path = s.Items.resolve(&root), "[].", refPath(path, s.Items)
	}
	if fields.isObject() && len(fields.Properties) > 0 {
		fmt.Fprintf(w, "  %s: %s\n", what, s.typeName(&root))
		var table bytes.Buffer
		tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    FIELD\tTYPE\tREQUIRED\tDESCRIPTION")
		fields.fields(tw, &root, prefix, path)
		tw.Flush()
		for line := range strings.Lines(table.String()) {
			fmt.Fprintln(w, strings.TrimRight(line, " \n"))
		}
		return
	}
	line := s.typeName(&root)
	if s.isObject() && len(s.AdditionalProperties) > 0 && string(s.AdditionalProperties) == "false" {
		line += " with no fields"
	}
	if note := s.notes(); note != "" {
		line += "  " + note
	}
	fmt.Fprintf(w, "  %s: %s\n", what, line)
}

// jsonSchema is the part of a JSON Schema that `domo docs` shows.
type jsonSchema struct {
	Ref                  string                 `json:"$ref"`
	Type                 any                    `json:"type"` // a string or a list of them
	Format               string                 `json:"format"`
	Title                string                 `json:"title"`
	Description          string                 `json:"description"`
	Properties           properties             `json:"properties"`
	Required             []string               `json:"required"`
	Items                *jsonSchema            `json:"items"`
	AdditionalProperties json.RawMessage        `json:"additionalProperties"`
	Enum                 []any                  `json:"enum"`
	Const                any                    `json:"const"`
	Default              any                    `json:"default"`
	Examples             []any                  `json:"examples"`
	Minimum              *json.Number           `json:"minimum"`
	Maximum              *json.Number           `json:"maximum"`
	ExclusiveMinimum     *json.Number           `json:"exclusiveMinimum"`
	ExclusiveMaximum     *json.Number           `json:"exclusiveMaximum"`
	MinLength            *int                   `json:"minLength"`
	MaxLength            *int                   `json:"maxLength"`
	MinItems             *int                   `json:"minItems"`
	MaxItems             *int                   `json:"maxItems"`
	Pattern              string                 `json:"pattern"`
	OneOf                []*jsonSchema          `json:"oneOf"`
	AnyOf                []*jsonSchema          `json:"anyOf"`
	Defs                 map[string]*jsonSchema `json:"$defs"`
	Definitions          map[string]*jsonSchema `json:"definitions"`
}

// property is one entry of "properties", in the order of the schema.
type property struct {
	name   string
	schema *jsonSchema
}

type properties []property

// UnmarshalJSON keeps the properties in the order the schema lists them.
func (p *properties) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var s jsonSchema
		if err := dec.Decode(&s); err != nil {
			return err
		}
		*p = append(*p, property{name, &s})
	}
	return nil
}

// resolve follows a local $ref ("#/$defs/Name") in root.
func (s *jsonSchema) resolve(root *jsonSchema) *jsonSchema {
	for range 8 { // a chain of references, not a loop
		if s.Ref == "" {
			return s
		}
		name := s.Ref[strings.LastIndexByte(s.Ref, '/')+1:]
		next := root.Defs[name]
		if next == nil {
			next = root.Definitions[name]
		}
		if next == nil {
			return s
		}
		if s.Description != "" && next.Description == "" {
			c := *next
			c.Description = s.Description
			next = &c
		}
		s = next
	}
	return s
}

func (s *jsonSchema) types() []string {
	switch t := s.Type.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			if str, ok := e.(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

func (s *jsonSchema) isObject() bool {
	return slices.Contains(s.types(), "object") || (s.Type == nil && len(s.Properties) > 0)
}

// typeName describes the type of s in a few words.
func (s *jsonSchema) typeName(root *jsonSchema) string {
	if s.Ref != "" {
		r := s.resolve(root)
		if r != s {
			name := s.Ref[strings.LastIndexByte(s.Ref, '/')+1:]
			if r.isObject() {
				return "object (" + name + ")"
			}
			return r.typeName(root)
		}
		return s.Ref
	}
	if len(s.OneOf)+len(s.AnyOf) > 0 {
		var alts []string
		for _, a := range append(slices.Clone(s.OneOf), s.AnyOf...) {
			alts = append(alts, a.typeName(root))
		}
		return strings.Join(alts, " or ")
	}
	ts := s.types()
	if len(ts) == 0 {
		if s.Const != nil {
			return "const"
		}
		return "any"
	}
	var out []string
	for _, t := range ts {
		switch t {
		case "array":
			if s.Items != nil {
				t = "array of " + s.Items.typeName(root)
			}
		case "object":
			var extra jsonSchema
			if len(s.AdditionalProperties) > 0 && s.AdditionalProperties[0] == '{' && json.Unmarshal(s.AdditionalProperties, &extra) == nil {
				t = "object of " + extra.typeName(root)
			}
		case "string":
			if s.Format != "" {
				t = "string (" + s.Format + ")"
			}
		}
		out = append(out, t)
	}
	return strings.Join(out, " or ")
}

// notes lists the description and constraints of s.
func (s *jsonSchema) notes() string {
	var parts []string
	if s.Description != "" {
		parts = append(parts, s.Description)
	} else if s.Title != "" {
		parts = append(parts, s.Title)
	}
	if len(s.Enum) > 0 {
		var vs []string
		for _, v := range s.Enum {
			vs = append(vs, compactJSON(v))
		}
		parts = append(parts, "one of "+strings.Join(vs, ", "))
	}
	if s.Const != nil {
		parts = append(parts, "always "+compactJSON(s.Const))
	}
	bound := func(label string, n *json.Number) {
		if n != nil {
			parts = append(parts, label+" "+n.String())
		}
	}
	if s.Minimum != nil && s.Maximum != nil {
		parts = append(parts, "from "+s.Minimum.String()+" to "+s.Maximum.String())
	} else {
		bound(">=", s.Minimum)
		bound("<=", s.Maximum)
	}
	bound(">", s.ExclusiveMinimum)
	bound("<", s.ExclusiveMaximum)
	count := func(label string, n *int) {
		if n != nil {
			parts = append(parts, fmt.Sprintf("%s %d", label, *n))
		}
	}
	count("min length", s.MinLength)
	count("max length", s.MaxLength)
	count("min items", s.MinItems)
	count("max items", s.MaxItems)
	if s.Pattern != "" {
		parts = append(parts, "matches "+s.Pattern)
	}
	if s.Default != nil {
		parts = append(parts, "default "+compactJSON(s.Default))
	}
	if len(s.Examples) > 0 {
		var vs []string
		for _, v := range s.Examples {
			vs = append(vs, compactJSON(v))
		}
		parts = append(parts, "e.g. "+strings.Join(vs, ", "))
	}
	return strings.Join(parts, "; ")
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// refPath returns path with the reference of s added, if it has one.
func refPath(path []string, s *jsonSchema) []string {
	if s.Ref == "" {
		return path
	}
	return append(slices.Clip(path), s.Ref)
}

// fields prints one row per property of s, and of nested objects (as
// parent.child, or parent[].child in arrays). A type that contains itself
// is expanded once: path holds the references already being expanded.
func (s *jsonSchema) fields(w io.Writer, root *jsonSchema, prefix string, path []string) {
	for _, p := range s.Properties {
		name := prefix + p.name
		ps := p.schema.resolve(root)
		req := ""
		if slices.Contains(s.Required, p.name) {
			req = "yes"
		}
		notes := p.schema.notes()
		if notes == "" || p.schema.Ref != "" {
			notes = ps.notes()
		}
		fmt.Fprintf(w, "    %s\t%s\t%s\t%s\n", name, p.schema.typeName(root), req, notes)
		if len(path) >= 8 || slices.Contains(path, p.schema.Ref) && p.schema.Ref != "" {
			continue
		}
		switch {
		case ps.isObject() && len(ps.Properties) > 0:
			ps.fields(w, root, name+".", refPath(path, p.schema))
		case ps.Items != nil:
			if slices.Contains(path, ps.Items.Ref) && ps.Items.Ref != "" {
				continue
			}
			if items := ps.Items.resolve(root); items.isObject() && len(items.Properties) > 0 {
				items.fields(w, root, name+"[].", refPath(path, ps.Items))
			}
		}
	}
}
