package main

// The decoding the Go plugins share, on its own: YAML documents decoded by
// sigs.k8s.io/yaml v1.3.0 into Go values of many shapes (a struct with a
// field of every kind, nested structs, slices, maps, pointers, an
// interface{}, scalars, an array), each result or error recorded for
// tests/ports/decode.rs to compare with nri::decode::from_yaml into the
// equivalent serde types.

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"

	yamlv2 "gopkg.in/yaml.v2"
	"sigs.k8s.io/yaml"
)

// inner and sink are mirrored by tests/ports/decode.rs, field for field and
// with the same type names (Go's error messages name the struct).
type inner struct {
	Name  string   `json:"name"`
	Count int32    `json:"count"`
	Tags  []string `json:"tags"`
	Ok    bool     `json:"ok"`
}

type sink struct {
	S     string            `json:"s"`
	B     bool              `json:"b"`
	I8    int8              `json:"i8"`
	I     int64             `json:"i"`
	U16   uint16            `json:"u16"`
	U     uint64            `json:"u"`
	F32   float32           `json:"f32"`
	F     float64           `json:"f"`
	PS    *string           `json:"ps"`
	PI    *int32            `json:"pi"`
	L     []int64           `json:"l"`
	LS    []string          `json:"ls"`
	M     map[string]string `json:"m"`
	MI    map[string]int64  `json:"mi"`
	In    inner             `json:"in"`
	PIn   *inner            `json:"pin"`
	Ins   []inner           `json:"ins"`
	Any   interface{}       `json:"any"`
	Camel string            `json:"camelCase"`
	Low   string            `json:"fold"`
	Up    string            `json:"FOLD"`
}

// decodeTargets are the Go types a document is decoded into, by the names
// the Rust side knows them by.
var decodeTargets = map[string]func() interface{}{
	"sink":              func() interface{} { return new(sink) },
	"inner":             func() interface{} { return new(inner) },
	"*inner":            func() interface{} { return new(*inner) },
	"[]inner":           func() interface{} { return new([]inner) },
	"[]string":          func() interface{} { return new([]string) },
	"[]int64":           func() interface{} { return new([]int64) },
	"[2]string":         func() interface{} { return new([2]string) },
	"map[string]string": func() interface{} { return new(map[string]string) },
	"map[string]int64":  func() interface{} { return new(map[string]int64) },
	"interface{}":       func() interface{} { return new(interface{}) },
	"string":            func() interface{} { return new(string) },
	"int64":             func() interface{} { return new(int64) },
	"uint8":             func() interface{} { return new(uint8) },
	"bool":              func() interface{} { return new(bool) },
	"float32":           func() interface{} { return new(float32) },
}

var targetNames = []string{
	"sink", "sink", "sink", "sink", "inner", "*inner", "[]inner", "[]inner", "[]string", "[]int64",
	"[2]string", "map[string]string", "map[string]int64", "interface{}", "string", "int64", "uint8",
	"bool", "float32",
}

var innerFields = []field{{"name", 's'}, {"count", 'n'}, {"tags", 'l'}, {"ok", 'b'}}

var sinkFields = []field{
	{"s", 's'}, {"b", 'b'}, {"i8", 'n'}, {"i", 'n'}, {"u16", 'n'}, {"u", 'h'}, {"f32", 'f'},
	{"f", 'f'}, {"ps", 's'}, {"pi", 'n'}, {"l", 'I'}, {"ls", 'l'}, {"m", 'M'}, {"mi", 'N'},
	{"in", 'i'}, {"pin", 'i'}, {"ins", 'L'}, {"any", 'a'}, {"camelCase", 's'}, {"fold", 's'},
	{"FOLD", 's'},
}

// decodeOnce decodes text into a fresh value of the target type: its JSON,
// or the error message.
func decodeOnce(target, text string) (string, string) {
	out := decodeTargets[target]()
	if err := yaml.Unmarshal([]byte(text), out); err != nil {
		return "", err.Error()
	}
	b, err := json.Marshal(reflect.ValueOf(out).Elem().Interface())
	if err != nil {
		return "", "marshal: " + err.Error()
	}
	return string(b), ""
}

// recordDecode fills a decode case's outcome; when Go's map iteration
// order can change it, every outcome seen in many runs.
func recordDecode(c *Case) {
	res, errText := decodeOnce(c.Target, c.Text)
	if errText != "" {
		c.Error = errText
	} else {
		c.Result = json.RawMessage(res)
	}
	if !ambiguous(c.Text) && badKeys(c.Text) < 2 {
		return
	}
	seen := map[string]bool{}
	for i := 0; i < 400; i++ {
		res, errText := decodeOnce(c.Target, c.Text)
		if errText != "" {
			b, _ := json.Marshal(map[string]string{"error": errText})
			res = string(b)
		}
		if !seen[res] {
			seen[res] = true
			c.Variants = append(c.Variants, json.RawMessage(res))
		}
	}
}

// badKeys counts the mapping keys sigs.k8s.io/yaml cannot turn into JSON
// keys: with two, which one its error names depends on map iteration.
func badKeys(text string) int {
	var v interface{}
	if yamlv2.Unmarshal([]byte(text), &v) != nil {
		return 0
	}
	n := 0
	var walk func(v interface{})
	walk = func(v interface{}) {
		switch v := v.(type) {
		case map[interface{}]interface{}:
			for k, e := range v {
				if _, ok := keyString(k); !ok {
					n++
				}
				walk(e)
			}
		case []interface{}:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return n
}

// nestedValue makes a value for the field kinds only the decode cases use;
// nil for the others.
func (g *gen) nestedValue(kind byte) *ynode {
	switch kind {
	case 'b':
		if g.chance(0.8) {
			n := &ynode{kind: 'v', scalar: g.pick("true", "false", "yes", "no", "on", "off", "y", "N", "True", "FALSE", "~", "")}
			if g.chance(0.05) {
				n.tag = "!!bool"
			}
			return n
		}
		return g.scalar('s')
	case 'f':
		if g.chance(0.7) {
			return &ynode{kind: 'v', scalar: g.pick("0.1", "1.5", "-2.5e-3", "3.14159265358979", "1e30", "1e39", "1e300",
				"1e400", ".inf", "-.inf", ".nan", "1", "0x10", "1_000.5", "6.02e+23", "-0.0", "1e-7", "1e-46", "0.000001",
				"16777217", "123456789012", "'1.5'", "~")}
		}
		return g.scalar('n')
	case 'i':
		saved := g.fields
		g.fields = innerFields
		defer func() { g.fields = saved }()
		if g.chance(0.1) {
			return g.value('s')
		}
		return g.object(innerFields)
	case 'L':
		saved := g.fields
		g.fields = innerFields
		defer func() { g.fields = saved }()
		if g.chance(0.08) {
			return g.value('s')
		}
		return g.list(g.r.Intn(4), func() *ynode {
			if g.chance(0.08) {
				return &ynode{kind: 'v', scalar: g.pick("null", "~", "x", "1")}
			}
			return g.object(innerFields)
		})
	case 'I':
		if g.chance(0.08) {
			return g.scalar('n')
		}
		return g.list(g.r.Intn(4), func() *ynode { return g.scalar('n') })
	case 'M', 'N':
		if g.chance(0.08) {
			return g.scalar('s')
		}
		m := &ynode{kind: 'm'}
		for i := 0; i < g.r.Intn(4); i++ {
			m.keys = append(m.keys, g.pick("a", "b", "A", "key", "1", "true", "0x10", "~", "x y", "ſ"))
			if kind == 'M' {
				m.vals = append(m.vals, g.scalar('s'))
			} else {
				m.vals = append(m.vals, g.scalar('n'))
			}
		}
		return m
	case 'a':
		switch g.r.Intn(5) {
		case 0:
			return g.scalar('s')
		case 1:
			return g.scalar('n')
		case 2:
			return g.nestedValue('N')
		case 3:
			return g.nestedValue('I')
		}
		return g.nestedValue('i')
	}
	return nil
}

// decodeCase is one random document for one target type.
func decodeCase(r *rand.Rand) Case {
	g := &gen{r: r}
	target := g.pick(targetNames...)
	var text string
	switch target {
	case "sink", "inner", "*inner":
		fields := sinkFields
		if target != "sink" {
			fields = innerFields
		}
		g.wild = g.chance(0.3)
		g.anchors, g.maps = nil, nil
		g.fields = fields
		top := g.object(fields)
		if g.chance(0.05) {
			top = g.value(g.pick("s", "l")[0])
		}
		top = g.anchorize(top)
		if g.chance(0.25) {
			text = g.wrap(g.flow(top, true))
		} else {
			text = g.wrap(g.block(top, 0, false))
		}
	case "[]inner":
		text = g.document(innerFields, false)
	case "[]string", "[2]string":
		text = g.document(nil, true)
	case "[]int64":
		g.fields = []field{{"n", 'n'}}
		top := g.anchorize(g.list(g.r.Intn(5), func() *ynode { return g.scalar('n') }))
		text = g.wrap(g.block(top, 0, false))
	case "map[string]string", "map[string]int64", "interface{}":
		kind := map[string]byte{"map[string]string": 'M', "map[string]int64": 'N', "interface{}": 'a'}[target]
		g.wild = g.chance(0.3)
		g.fields = innerFields
		top := g.anchorize(g.nestedValue(kind))
		if g.chance(0.3) {
			text = g.wrap(g.flow(top, true))
		} else {
			text = g.wrap(g.block(top, 0, false))
		}
	default:
		kind := map[string]byte{"string": 's', "int64": 'n', "uint8": 'o', "bool": 'b', "float32": 'f'}[target]
		g.wild = g.chance(0.3)
		top := g.value(kind)
		if kind == 'b' || kind == 'f' {
			top = g.nestedValue(kind)
		}
		text = g.wrap(g.block(top, 0, false))
	}
	c := Case{Plugin: "decode", Target: target, Text: text}
	recordDecode(&c)
	return c
}

// decodeEdgeCases are written out: the rules one by one.
var decodeEdgeCases = [][2]string{
	// YAML 1.1 scalars into a string, a bool, numbers.
	{"sink", "s: yes\nb: yes\ni: 0777\nu16: 0x1F\nf: .5\nu: 0b101\ni8: -0b11"},
	{"sink", "s: off\nb: Off\ni: 1_000\nf: 1_000.5\nl: [0o17, 0O17, +5, -0]"},
	{"sink", "s: 190:20:30\ni: 190:20:30"},
	{"sink", "s: ~\nb: ~\ni: ~\nps: ~\nl: ~\nm: ~\nin: ~\npin: ~\nany: ~"},
	{"sink", "s: null\nb: Null\nps: NULL\nany:"},
	{"sink", "s: 2001-12-14\nany: 2001-12-14t21:59:43.10-05:00"},
	{"sink", "s: .inf\nf: .inf"},
	{"sink", "s: .nan"},
	{"sink", "f: .nan"},
	{"sink", "unknown: .nan\ns: x"},
	{"sink", "any: [1, .inf]"},
	{"sink", "s: 0.1\nps: 3.14159265358979\nls: [1e30, 1.0, 123456789, 16777217, -0.0, 1e-7]"},
	{"sink", "s: 18446744073709551615\nu: 18446744073709551615\ni: 18446744073709551615"},
	{"sink", "i: 9223372036854775807\nu: -1"},
	{"sink", "i: 1.0\nu16: 1e3\nf32: 1e39"},
	{"sink", "i: 1.5"},
	{"sink", "i: 1e21"},
	{"sink", "i8: 128"},
	{"sink", "i8: -129\nu16: 65536"},
	{"sink", "u: -0.0"},
	{"sink", "b: 1"},
	{"sink", "b: '1'"},
	{"sink", "s: [a]"},
	{"sink", "s: {a: 1}"},
	{"sink", "l: x"},
	{"sink", "l: {a: 1}"},
	{"sink", "m: [a]"},
	{"sink", "in: [1]"},
	{"sink", "in: 1"},
	{"sink", "in: {count: x}"},
	{"sink", "ins: [{count: 1}, {count: x}]"},
	{"sink", "pin: {count: 1.5}"},
	{"sink", "mi: {a: x}"},
	{"sink", "mi: {a: 1, b: 2.5, c: 3}"},
	{"sink", "i: x\nb: 2\ns: [1]"},
	{"sink", "s: [1]\ni: x"},
	{"sink", "zz: .nan\ni: x"},
	{"sink", "i: x\nf: .nan"},
	// Field names: case, folding, exact first, duplicates.
	{"sink", "S: upper\nI: 5"},
	{"sink", "CAMELCASE: a"},
	{"sink", "camelcase: a\ncamelCase: b"},
	{"sink", "fold: low\nFOLD: up"},
	{"sink", "Fold: which"},
	{"sink", "FOLD: up\nFold: other"},
	{"sink", "ſ: long s\nIN: {NAME: n, ſ: x}"},
	{"sink", "\u212a: kelvin"},
	{"inner", "name: a\nname: b"},
	{"inner", "name: a\nNAME: b"},
	{"inner", "NAME: a\nname: b"},
	{"inner", "Name: a\nname: ~"},
	{"inner", "Name: ~\nname: a"},
	{"inner", "Count: 1\ncount: x"},
	{"inner", "Count: x\ncount: 1"},
	{"inner", "Tags: [a, b, c]\ntags: [x]"},
	{"inner", "TAGS: [a, b, c]\nTags: [x]\ntags: [p, ~, q]"},
	{"inner", "TAGS: [a, b, c]\nTags: []\ntags: [p, ~, q]"},
	{"inner", "TAGS: [a, b]\nTags: ~\ntags: [~, q]"},
	{"sink", "IN: {name: a, count: 1}\nIn: {count: 2}\nin: {tags: [t]}"},
	{"sink", "IN: {name: a}\nin: ~"},
	{"sink", "PIN: {name: a}\npin: {count: 2}"},
	{"sink", "PIN: {name: a}\npin: ~"},
	{"sink", "Ins: [{name: a, count: 1}, {name: b}]\nins: [{count: 5}]"},
	{"sink", "INS: [{name: a}, {name: b}]\nIns: [{count: 1}]\nins: [{ok: y}, {}]"},
	{"sink", "M: {a: x, b: y}\nm: {b: z, c: w}"},
	{"sink", "M: {a: x}\nm: ~"},
	{"sink", "MI: {a: 1}\nmi: {a: x}"},
	{"sink", "Any: {a: 1}\nany: [2]"},
	{"sink", "PS: a\nps: ~"},
	{"sink", "PS: ~\nps: b"},
	{"sink", "PI: 1\npi: x"},
	// Values a later null or empty list throws away: still checked.
	{"inner", "TAGS: [a, .nan]\ntags: []"},
	{"inner", "TAGS: [a, .nan]\ntags: ~"},
	{"sink", "L: [x, 1]\nl: []"},
	{"sink", "L: [1, x]\nl: [2]"},
	{"sink", "LS: [.inf]\nls: [a, b]"},
	{"sink", "Ins: [{count: x}]\nins: []"},
	{"sink", "Ins: [{tags: [.nan]}]\nins: ~"},
	{"sink", "MI: {a: x}\nmi: ~\nMi: {b: 1}"},
	{"sink", "M: {a: .nan}\nm: ~\nMm: 1"},
	{"sink", "PI: x\npi: ~\nPi: 1"},
	{"sink", "PS: .nan\nps: ~\nPs: a"},
	{"sink", "PIN: {count: x}\npin: ~\nPin: {name: a}"},
	// Keys that are not strings.
	{"map[string]string", "1: a\ntrue: b\n1.5: c\n0x10: d\n.inf: e\n-.inf: f\n.nan: g\n1e3: h"},
	{"map[string]string", "~: a"},
	{"map[string]string", "~: {b: 1, a: 2, 1.5: x, 3: y, true: z, C: w, 2: v, -1: u, 0.5: t, false: s}"},
	{"map[string]string", "~: [1, {b: 1, a: [x, ~]}, 1e20, 0.000001, 'a\"b', ~]"},
	{"map[string]string", "null: a\nb: 1"},
	{"map[string]string", "18446744073709551615: a"},
	{"map[string]string", "? [a]\n: b"},
	{"map[string]string", "{a: 1, b}"},
	{"map[string]int64", "a: 1\nb: 0x10\nc: ~\nd: 1.0"},
	{"map[string]int64", "a: 1.5"},
	{"map[string]int64", "a: [1]"},
	{"map[string]string", "a: yes\nb: 1.50\nc: 1e3\nd: [x]"},
	// Anchors, aliases, merges.
	{"sink", "in: &x {name: a, count: 1}\npin: *x\nins: [*x, *x]"},
	{"sink", "base: &b {s: from base, i: 1}\n<<: *b\ni: 2"},
	{"inner", "<<: [{name: first}, {name: second, count: 2}]"},
	{"inner", "<<: 1"},
	{"inner", "a: &x [*x]"},
	{"inner", "name: *nope"},
	{"[]string", "- &a x\n- *a\n- &a y\n- *a"},
	{"[]string", "- !!binary aGVsbG8=\n- !!binary /w==\n- !!binary aGk"},
	{"[]string", "- !!str 1\n- !!int 1\n- !custom x\n- ! 1\n- !!float 1"},
	{"[]string", "- !!int abc"},
	{"[]string", "- !!float 0x10"},
	{"[]string", "- !!bool 1"},
	// Shapes at the top.
	{"[]string", ""},
	{"[]string", "~"},
	{"[]string", "[]"},
	{"[]string", "a: b"},
	{"[]string", "x"},
	{"[]string", "- [a]"},
	{"[]string", "- {a: b}"},
	{"[]string", "- ~\n- x\n-"},
	{"[]int64", "[1, x, 2.5, ~, 0x10]"},
	{"[2]string", "[a, b, c]"},
	{"[2]string", "[a]"},
	{"[2]string", "[1, yes]"},
	{"[2]string", "[[x], a]"},
	{"*inner", "~"},
	{"*inner", "{}"},
	{"*inner", "name: x"},
	{"interface{}", "a: [1, 2.5, yes, ~, x, 0x10, 1e30]"},
	{"interface{}", "18446744073709551615"},
	{"interface{}", ".nan"},
	{"string", "123"},
	{"string", "1.5e3"},
	{"string", "[a]"},
	{"int64", "'123'"},
	{"int64", "0x7FFFFFFFFFFFFFFF"},
	{"uint8", "255"},
	{"uint8", "256"},
	{"uint8", "-1"},
	{"bool", "yes"},
	{"bool", "'yes'"},
	{"float32", "3.4e38"},
	{"float32", "3.5e38"},
	{"float32", "~"},
	// Syntax errors and their lines.
	{"sink", "s: a\ni: 1\n  x: y"},
	{"sink", "s: 'a"},
	{"sink", "s: \"\\q\""},
	{"sink", "s: a\n\t- b"},
	{"sink", "a: b: c"},
	{"sink", "- a\nb: c"},
	{"sink", "s: [a, b"},
	{"sink", "s: {a: 1, b: [1, 2}"},
	{"sink", "[[["},
	{"sink", "s: \x01"},
	{"sink", "%YAML 1.2\n---\ns: a"},
	{"sink", "%YAML 1.1\n---\ns: a"},
	{"sink", "---\ns: a\n---\ns: b"},
	{"sink", "s: a\n...\n--- [broken"},
	{"sink", "s: [a?b]"},
	{"sink", "s: |\n  a\n b"},
	{"sink", "\n\n  s: b\n c: d"},
	{"sink", "s: a\n  # comment\ni: 2"},
	{"sink", "\ufeffs: bom"},
}

// decodeEdges emits the written-out cases.
func decodeEdges(emit func(Case)) int {
	for i, e := range decodeEdgeCases {
		if _, ok := decodeTargets[e[0]]; !ok {
			panic(fmt.Sprintf("edge case %d: unknown target %q", i, e[0]))
		}
		c := Case{Plugin: "decode", ID: i, Target: e[0], Text: e[1]}
		recordDecode(&c)
		emit(c)
	}
	return len(decodeEdgeCases)
}
