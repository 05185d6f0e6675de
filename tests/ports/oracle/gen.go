package main

// Random YAML annotations for the device injector and the ulimit adjuster:
// the right shapes written in every YAML form (block and flow style,
// JSON, quoting, block scalars, multi-line plain scalars, anchors, aliases,
// merge keys, tags, document markers, comments), field names in any case,
// numbers in every YAML 1.1 form, nulls, duplicates, unicode, long values,
// wrong shapes, and a share of inputs with random edits.

import (
	"fmt"
	"math/rand"
	"strings"
)

// A YAML node before rendering.
type ynode struct {
	kind    byte // 'm' map, 's' sequence, 'v' scalar, 'r' raw text (alias or merge value)
	keys    []string
	vals    []*ynode
	items   []*ynode
	scalar  string // rendered scalar for flow and block context
	block   string // a block scalar (`|`...), block context only; lines without indent
	anchor  string
	tag     string
	raw     string
	merge   bool // a `<<` entry in a map: keys[i] is "<<"
	oneLine bool // a flow collection written on one line
}

type gen struct {
	r *rand.Rand
	// wild documents use every odd form; the others mostly valid values,
	// so that successes are compared too.
	wild  bool
	names []string // valid values for string fields, when set
	// valid values of the items of 'G' fields (lists of names), then "|"
	// and invalid ones, as names.
	flagNames []string
	anchors   []string
	maps      []string // anchors of mappings
	n         int
	fields    []field
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }
func (g *gen) pick(list ...string) string {
	return list[g.r.Intn(len(list))]
}

var stringWords = []string{
	"/dev/nri-null", "/dev/nri-zero", "/dev/fuse", "c", "b", "u", "p", "bind", "ro", "rw",
	"rbind", "nosuid", "/home", "/host-home", "/tmp/x y", "tmpfs", "vendor0.com/device=null",
	"vendor1.com/device=dev1", "nvidia.com/gpu=0", "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
	"IOPRIO_CLASS_IDLE", "IOPRIO_CLASS_NONE", "ioprio_class_rt", "/dev/ñull", "/dev/设备",
	"/dev/😀", "x", "a b", "a:b", "a#b", "-x", "?x", "@x", "%x", "key=value",
}

var yamlWords = []string{
	"yes", "Yes", "YES", "no", "No", "on", "ON", "off", "Off", "y", "Y", "n", "N", "true", "True",
	"false", "FALSE", "null", "Null", "NULL", "~", "<<", "=", "2001-12-14", "2001-12-14t21:59:43.10-05:00",
	"2001-12-14 21:59:43.10", "2002-02-30", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", ".5", ".", "..",
}

var numberWords = []string{
	"0", "1", "3", "5", "42", "255", "1000", "65535", "-1", "-5", "+1", "-0", "+0", "00", "07",
	"0666", "0644", "08", "09", "0777", "0o17", "0O17", "0o8", "0x1f", "0X1F", "0xffffffff",
	"0x", "0b11", "0B11", "0b", "0b2", "-0b101", "0b-1", "1_000", "1__0", "_1", "1_", "0x_1f",
	"1.0", "1.", "1.5", "-1.0", "-0.0", "1e3", "1E3", "1e+3", "1e-3", "1.5e2", "2.5e-1", "1e21",
	"1e20", "1e19", "1e-7", "1e400", "1e-400", ".5", "+.5", "-.5", ".5e1", "._5", ".1_0",
	"4294967295", "4294967296", "2147483647", "2147483648", "-2147483648", "-2147483649",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
	"18446744073709551615", "18446744073709551616", "123456789012345678", "1.8446744073709552e19",
	"9.223372036854776e18", "0.1", "1e6", "123456789", "1234567.0", "3.14159265358979",
	"0000000000000000000000000001", "0x10000000000000000", "0b" + strings.Repeat("1", 64),
	"0b" + strings.Repeat("1", 65), "1:30", "190:20:30", "1,000",
}

// key returns a spelling of a field name: its case changed, a Unicode
// letter that folds onto it, or as is.
func (g *gen) key(name string) string {
	switch g.r.Intn(12) {
	case 0:
		return strings.ToUpper(name)
	case 1:
		return strings.ToUpper(name[:1]) + name[1:]
	case 2:
		b := []byte(name)
		for i := range b {
			if g.chance(0.5) && b[i] >= 'a' && b[i] <= 'z' {
				b[i] -= 32
			}
		}
		return string(b)
	case 3:
		if strings.ContainsAny(name, "sk") {
			s := strings.Replace(name, "s", "ſ", 1)
			return strings.Replace(s, "k", "\u212a", 1)
		}
		return name
	case 4:
		if g.chance(0.3) {
			return name + "x"
		}
		return name
	}
	return name
}

func (g *gen) quoteSingle(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func (g *gen) quoteDouble(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20:
			fmt.Fprintf(&b, "\\x%02x", c)
		case c > 0x7f && g.chance(0.3):
			fmt.Fprintf(&b, "\\u%04x", c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// scalarText is a scalar's text in one of the quoting styles.
func (g *gen) quoted(text string) string {
	switch g.r.Intn(3) {
	case 0:
		return g.quoteSingle(text)
	case 1:
		return g.quoteDouble(text)
	}
	return text
}

func (g *gen) longString() string {
	n := 100 + g.r.Intn(3000)
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(g.pick("/dev/", "abc", "é", "设", "-", "_", "0", "x"))
	}
	return b.String()
}

var goodNumbers = []string{
	"0", "1", "3", "5", "42", "255", "1000", "65535", "+1", "-0", "+0", "00", "07", "0666", "0644",
	"08", "09", "0777", "0o17", "0O17", "0x1f", "0X1F", "0xffffffff", "0b11", "0B11", "1_000", "1.0",
	"1.", "1e3", "1E3", "1e+3", "1.5e2", "4294967295", "2147483647", "123456789", "1e6", "1234567.0",
	"18446744073709551615", "1e19", "0000000000000000000000000001", "~", "null", "",
}

// scalar makes a scalar node for a field of kind 's' (string) or 'n' (number).
func (g *gen) scalar(kind byte) *ynode {
	if !g.wild && !g.chance(0.03) {
		return g.goodScalar(kind)
	}
	if kind == 'e' {
		kind = 's'
	}
	if kind == 'h' || kind == 'o' {
		kind = 'n'
	}
	n := &ynode{kind: 'v'}
	var text string
	switch r := g.r.Intn(100); {
	case r < 40:
		if kind == 'n' {
			text = g.pick(numberWords...)
		} else {
			text = g.pick(stringWords...)
		}
	case r < 55:
		text = g.pick(numberWords...)
	case r < 68:
		text = g.pick(yamlWords...)
	case r < 72:
		text = g.longString()
	case r < 76:
		text = ""
	case r < 80:
		return g.blockScalar(n)
	case r < 84:
		return g.multiLinePlain(n)
	default:
		text = fmt.Sprint(g.r.Intn(70000) - 5)
	}
	switch g.r.Intn(10) {
	case 0:
		n.scalar = g.quoteSingle(text)
	case 1:
		n.scalar = g.quoteDouble(text)
	default:
		if needsQuotes(text) {
			n.scalar = g.quoteDouble(text)
		} else {
			n.scalar = text
		}
	}
	if g.chance(0.08) {
		n.tag = g.pick("!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!custom", "!", "!<tag:yaml.org,2002:int>", "!!merge")
		if n.tag == "!!binary" && g.chance(0.7) {
			n.scalar = g.pick("aGVsbG8=", "L2Rldi9udWxs", "/w==", "aGk", "!!!!", "YQ==\n")
			if strings.Contains(n.scalar, "\n") || strings.Contains(n.scalar, "!") {
				n.scalar = g.quoteDouble(n.scalar)
			}
		}
	}
	return n
}

// blockScalar makes n a block scalar of one or two lines.
func (g *gen) blockScalar(n *ynode) *ynode {
	body := g.pick(stringWords...)
	if g.chance(0.5) {
		body += "\n" + g.pick(stringWords...)
	}
	n.block = g.pick("|", ">", "|-", ">-", "|+", ">+", "|2") + "\n" + body + "\n"
	n.scalar = g.quoteDouble(body)
	return n
}

// multiLinePlain makes n a plain scalar on two lines (folded into one line
// by YAML).
func (g *gen) multiLinePlain(n *ynode) *ynode {
	n.block = "\x00" + g.pick(stringWords...) + "\n" + g.pick(stringWords...)
	n.scalar = g.quoteDouble(n.block[1:])
	return n
}

// nameNode makes a scalar of one of names: the valid ones, then after "|"
// invalid ones (picked now and then).
func (g *gen) nameNode(names []string) *ynode {
	n := &ynode{kind: 'v'}
	valid := names
	for i, name := range names {
		if name == "|" {
			valid = names[:i]
			if g.chance(0.08) {
				valid = names[i+1:]
			}
		}
	}
	text := g.pick(valid...)
	if needsQuotes(text) || g.chance(0.2) {
		n.scalar = g.quoteDouble(text)
	} else {
		n.scalar = text
	}
	return n
}

// goodScalar makes a scalar that decodes into a field of its kind, in any
// of the forms YAML allows.
func (g *gen) goodScalar(kind byte) *ynode {
	n := &ynode{kind: 'v'}
	var text string
	if kind == 'e' {
		return g.nameNode(g.names)
	}
	if kind == 'n' || kind == 'h' || kind == 'o' {
		text = g.pick(goodNumbers...)
		switch {
		case kind == 'h' && g.chance(0.8):
			text = g.pick(fmt.Sprint(5000+g.r.Intn(100000)), "0x10000", "1e6", "1_000_000", "18446744073709551615", "0o7777777", "1e19")
		case kind == 'o' && g.chance(0.8):
			text = g.pick(fmt.Sprint(g.r.Intn(5000)), "0x100", "1e3", "0666", "0b1111", "1_000", "+7", "-0", "~", "")
		case g.chance(0.5):
			text = fmt.Sprint(g.r.Intn(5000))
		}
		if g.chance(0.05) {
			n.tag = g.pick("!!int", "!!float")
		}
		n.scalar = text
		if text == "" {
			n.scalar = g.pick("", "~")
		}
		return n
	}
	switch r := g.r.Intn(100); {
	case r < 50:
		text = g.pick(stringWords...)
		if len(g.names) > 0 {
			text = g.pick(g.names...)
		}
	case r < 58:
		text = g.pick(goodNumbers...)
	case r < 66:
		text = g.pick(yamlWords...)
	case r < 70:
		text = g.longString()
	case r < 78:
		return g.blockScalar(n)
	case r < 84:
		return g.multiLinePlain(n)
	default:
		text = g.pick(stringWords...)
		if g.chance(0.3) {
			n.tag = g.pick("!!str", "!custom", "!")
		}
	}
	switch {
	case needsQuotes(text) || g.chance(0.2):
		n.scalar = g.quoted(text)
		if !strings.HasPrefix(n.scalar, "'") && !strings.HasPrefix(n.scalar, "\"") {
			n.scalar = g.quoteDouble(text)
		}
	default:
		n.scalar = text
	}
	return n
}

func needsQuotes(s string) bool {
	if s == "" {
		return true
	}
	if strings.ContainsAny(s[:1], "-?:,[]{}#&*!|>'\"%@` ") {
		return true
	}
	return strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.HasSuffix(s, ":") || strings.HasSuffix(s, " ") || strings.ContainsAny(s, ",[]{}")
}

type field struct {
	name string
	kind byte // 's' string, 'n' number, 'l' list of strings
}

var deviceFields = []field{{"path", 's'}, {"type", 's'}, {"major", 'n'}, {"minor", 'n'}, {"file_mode", 'n'}, {"uid", 'n'}, {"gid", 'n'}}
var mountFields = []field{{"source", 's'}, {"destination", 's'}, {"type", 's'}, {"options", 'l'}}
var ioprioFields = []field{{"class", 'e'}, {"priority", 'n'}}
var ulimitFields = []field{{"type", 'e'}, {"hard", 'h'}, {"soft", 'o'}}

var ioprioClasses = []string{"IOPRIO_CLASS_NONE", "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE", "|", "IOPRIO_CLASS_rt", "BE", ""}
var rlimitTypes = []string{"nofile", "NOFILE", "RLIMIT_NOFILE", "rlimit_nofile", "Rlimit_Core", "memlock", "msgqueue",
	"rttime", "sigpending", "nproc", "as", "cpu", "data", "fsize", "locks", "nice", "rss", "rtprio", "stack", "core",
	"nofıle", "ſtack", "|", "ﬆack", "nofiles", "RLIMIT_RLIMIT_CORE", "straße", "nproc ", " nofile", "rlimit_", ""}

// value makes a node for a field: usually of its kind, sometimes another shape.
func (g *gen) value(kind byte) *ynode {
	if n := g.nestedValue(kind); n != nil {
		return n
	}
	r := g.r.Intn(100)
	if !g.wild {
		r = 9 + g.r.Intn(91)
		if g.chance(0.02) {
			r = g.r.Intn(9)
		}
	}
	switch {
	case r < 3:
		return &ynode{kind: 'm', keys: []string{g.pick("a", "path", "1")}, vals: []*ynode{g.scalar('s')}}
	case r < 6 && kind != 'l':
		return g.list(g.r.Intn(3), func() *ynode { return g.scalar(kind) })
	case r < 9:
		return &ynode{kind: 'v', scalar: g.pick("null", "~", "", "Null")}
	}
	if kind == 'G' {
		if g.chance(0.05) {
			return g.nameNode(g.flagNames)
		}
		return g.list(g.r.Intn(4), func() *ynode { return g.nameNode(g.flagNames) })
	}
	if kind == 'l' {
		if g.chance(0.1) {
			return g.scalar('s')
		}
		return g.list(g.r.Intn(4), func() *ynode { return g.scalar('s') })
	}
	return g.scalar(kind)
}

func (g *gen) list(n int, item func() *ynode) *ynode {
	l := &ynode{kind: 's'}
	for i := 0; i < n; i++ {
		l.items = append(l.items, item())
	}
	return l
}

// object makes a mapping with some of the fields, in any order, with
// duplicates, unknown keys, merges and odd keys.
func (g *gen) object(fields []field) *ynode {
	m := &ynode{kind: 'm'}
	for _, f := range g.r.Perm(len(fields)) {
		if g.chance(0.2) && (g.wild || g.chance(0.3)) {
			continue
		}
		m.keys = append(m.keys, g.key(fields[f].name))
		m.vals = append(m.vals, g.value(fields[f].kind))
		if g.chance(0.06) && (g.wild || g.chance(0.5)) {
			// A duplicate, same or other spelling.
			m.keys = append(m.keys, g.key(fields[f].name))
			m.vals = append(m.vals, g.value(fields[f].kind))
		}
	}
	if g.chance(0.03) {
		// Two keys that JSON names alike: Go keeps either value, as its
		// map iteration order decides (a NaN then fails, or not).
		pair := [][2]string{{"1", "'1'"}, {"true", "\"true\""}, {"1.0", "1"}, {"0x10", "'16'"}}[g.r.Intn(4)]
		for _, k := range pair {
			m.keys = append(m.keys, k)
			m.vals = append(m.vals, &ynode{kind: 'v', scalar: g.pick(".nan", "x", "1")})
		}
	}
	if g.chance(0.08) && (g.wild || g.chance(0.5)) {
		m.keys = append(m.keys, g.pick("foo", "unknown", "1", "true", "1.5", "~", "null", "18446744073709551615", "[a]", "-1", "0x10", "'quoted key'", "\"dq\"", "?"))
		v := g.scalar('s')
		if g.wild && g.chance(0.3) {
			v = &ynode{kind: 'v', scalar: g.pick(".inf", ".nan", "-.inf", "1", "{a: .nan}", "[1, .inf]")}
		}
		m.vals = append(m.vals, v)
	}
	return m
}

func (g *gen) alias() string {
	if len(g.anchors) == 0 || (g.wild && g.chance(0.03)) {
		return "*nope"
	}
	return "*" + g.anchors[g.r.Intn(len(g.anchors))]
}

// anchorize gives some nodes of a tree anchors, replaces some later nodes
// with aliases of earlier ones and adds merge keys to some mappings, in
// document order.
func (g *gen) anchorize(n *ynode) *ynode {
	if len(g.anchors) > 0 && g.chance(0.06) && (g.wild || g.chance(0.3)) {
		return &ynode{kind: 'r', raw: g.alias()}
	}
	early := false
	if g.chance(0.08) {
		g.n++
		n.anchor = fmt.Sprintf("a%d", g.n)
		if g.chance(0.1) {
			n.anchor = "x" // redefined anchors
		}
		if g.wild && g.chance(0.1) {
			// Defined before its children, so they may alias it.
			g.anchors = append(g.anchors, n.anchor)
			early = true
		}
	}
	if n.kind == 'm' && g.chance(0.15) {
		// A merge: of an anchored node (which may not be a mapping), of
		// several, or of an inline mapping; anywhere in the mapping.
		var val *ynode
		switch r := g.r.Intn(4); {
		case r == 0 && len(g.anchors) > 0 && g.wild:
			val = &ynode{kind: 'r', raw: "[" + g.alias() + ", " + g.alias() + "]"}
		case r == 1 && len(g.anchors) > 0 && g.wild:
			val = &ynode{kind: 'r', raw: g.alias()}
		case r < 2 && len(g.maps) > 0:
			a, b := g.maps[g.r.Intn(len(g.maps))], g.maps[g.r.Intn(len(g.maps))]
			val = &ynode{kind: 'r', raw: g.pick("*"+a, "["+"*"+a+", *"+b+"]")}
		case r == 2 && g.wild:
			val = &ynode{kind: 'v', scalar: g.pick("1", "~", "[a]")}
		default:
			f := g.fields[g.r.Intn(len(g.fields))]
			val = &ynode{kind: 'm', keys: []string{g.key(f.name)}, vals: []*ynode{g.value(f.kind)}}
		}
		at := g.r.Intn(len(n.keys) + 1)
		n.keys = append(n.keys[:at], append([]string{"<<"}, n.keys[at:]...)...)
		n.vals = append(n.vals[:at], append([]*ynode{val}, n.vals[at:]...)...)
	}
	for i := range n.vals {
		n.vals[i] = g.anchorize(n.vals[i])
	}
	for i := range n.items {
		n.items[i] = g.anchorize(n.items[i])
	}
	if n.anchor != "" && !early {
		g.anchors = append(g.anchors, n.anchor)
		if n.kind == 'm' {
			g.maps = append(g.maps, n.anchor)
		}
	}
	return n
}

// document makes a whole annotation value of list-of-`fields` shape.
func (g *gen) document(fields []field, scalarItems bool) string {
	g.wild = g.chance(0.3)
	g.anchors, g.maps = nil, nil
	g.fields = fields
	if g.fields == nil {
		g.fields = []field{{"name", 's'}}
	}
	var top *ynode
	r := g.r.Intn(100)
	if !g.wild {
		r = 10 + g.r.Intn(90)
	}
	switch {
	case r < 4:
		top = g.scalar('s')
	case r < 8:
		top = g.object(fields)
	case r < 10:
		top = &ynode{kind: 'v', scalar: g.pick("null", "~", "[]", "{}", "''", "-", "[[]]")}
	default:
		n := 1 + g.r.Intn(4)
		if g.chance(0.03) {
			n = 50 + g.r.Intn(100)
		}
		top = g.list(n, func() *ynode {
			if g.chance(0.05) && g.wild {
				return &ynode{kind: 'v', scalar: g.pick("null", "~", "", "{}", "[]", "x", "1")}
			}
			if scalarItems {
				return g.scalar('s')
			}
			return g.object(fields)
		})
	}
	top = g.anchorize(top)
	var text string
	if g.chance(0.25) {
		text = g.flow(top, true)
	} else {
		text = g.block(top, 0, false)
	}
	return g.wrap(text)
}

// wrap adds document-level syntax around a rendered document.
func (g *gen) wrap(text string) string {
	if g.chance(0.1) {
		text = "# a comment\n" + text
	}
	switch r := g.r.Intn(100); {
	case r < 8:
		text = "---\n" + text
	case r < 10:
		text = "--- " + strings.TrimLeft(text, " ")
	case r < 13:
		text = "%YAML 1.1\n---\n" + text
	case r < 14 && g.wild:
		text = "%YAML 1.2\n---\n" + text
	case r < 15:
		text = "%TAG !e! tag:yaml.org,2002:\n---\n" + strings.ReplaceAll(text, "!!", "!e!")
	}
	switch r := g.r.Intn(100); {
	case r < 5:
		text += "...\n"
	case r < 8:
		text += "---\n- second: document\n"
	case r < 10:
		text += "...\n--- [broken\n"
	case r < 12:
		text += "\n\n# trailing comment\n"
	}
	if g.wild && g.chance(0.25) {
		text = g.mutate(text)
	}
	return text
}

// mutate makes random edits.
func (g *gen) mutate(text string) string {
	b := []rune(text)
	for i := 0; i < 1+g.r.Intn(3); i++ {
		if len(b) == 0 {
			break
		}
		at := g.r.Intn(len(b))
		switch g.r.Intn(3) {
		case 0:
			b = append(b[:at], b[at+1:]...)
		case 1:
			b = append(b[:at], append([]rune{b[at]}, b[at:]...)...)
		default:
			chars := []rune(": -[]{},#&*!|>'\"%\t\n?")
			c := chars[g.r.Intn(len(chars))]
			b = append(b[:at], append([]rune{c}, b[at:]...)...)
		}
	}
	return string(b)
}

func props(n *ynode) string {
	s := ""
	if n.anchor != "" {
		s += "&" + n.anchor + " "
	}
	if n.tag != "" {
		s += n.tag + " "
	}
	return s
}

func renderKey(k string) string {
	switch k {
	case "[a]":
		return "? [a]\n"
	}
	return k
}

// flow renders a node in flow style (JSON-like when json is set).
func (g *gen) flow(n *ynode, top bool) string {
	p := props(n)
	switch n.kind {
	case 'r':
		return n.raw
	case 'v':
		return p + n.scalar
	case 's':
		parts := make([]string, len(n.items))
		for i, it := range n.items {
			parts[i] = g.flow(it, false)
		}
		sep := ", "
		if g.chance(0.2) {
			sep = ",\n  "
		}
		return p + "[" + strings.Join(parts, sep) + "]"
	case 'm':
		parts := make([]string, len(n.keys))
		for i, k := range n.keys {
			key := k
			if k == "[a]" {
				key = "? [a]"
			} else if g.chance(0.3) && k != "<<" {
				key = g.quoteDouble(k)
			}
			parts[i] = key + ": " + g.flow(n.vals[i], false)
		}
		return p + "{" + strings.Join(parts, ", ") + "}"
	}
	return ""
}

// block renders a node in block style at an indentation; inSeq tells
// that the node follows "- " on the same line.
func (g *gen) block(n *ynode, indent int, inline bool) string {
	pad := strings.Repeat(" ", indent)
	p := props(n)
	switch n.kind {
	case 'r':
		return n.raw + "\n"
	case 'v':
		if n.block != "" && n.tag == "" {
			if n.block[0] == 0 {
				lines := strings.Split(n.block[1:], "\n")
				out := p + lines[0] + "\n"
				for _, l := range lines[1:] {
					out += pad + "  " + l + "\n"
				}
				if needsQuotes(lines[0]) {
					return p + n.scalar + "\n"
				}
				return out
			}
			head, body, _ := strings.Cut(n.block, "\n")
			out := p + head + "\n"
			for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
				out += pad + "  " + l + "\n"
			}
			return out
		}
		return p + n.scalar + "\n"
	case 's':
		if len(n.items) == 0 || g.chance(0.15) {
			return g.flow(n, false) + "\n"
		}
		out := ""
		if p != "" {
			out = p + "\n"
			inline = false
		}
		for i, it := range n.items {
			lead := pad
			if i == 0 && inline && p == "" {
				lead = ""
			}
			if (it.kind == 'm' || it.kind == 's') && props(it) == "" && len(it.keys)+len(it.items) > 0 && g.chance(0.8) {
				out += lead + "- " + g.block(it, indent+2, true)
			} else if it.kind == 'm' || it.kind == 's' {
				out += lead + "-\n" + strings.Repeat(" ", indent+2) + g.block(it, indent+2, true)
			} else {
				out += lead + "- " + g.block(it, indent+2, true)
			}
		}
		return out
	case 'm':
		if len(n.keys) == 0 || g.chance(0.1) {
			return g.flow(n, false) + "\n"
		}
		out := ""
		if p != "" {
			out = p + "\n"
			inline = false
		}
		step := 2
		if g.chance(0.2) {
			step = 4
		}
		for i, k := range n.keys {
			lead := pad
			if i == 0 && inline && p == "" {
				lead = ""
			}
			v := n.vals[i]
			key := renderKey(k)
			if strings.HasPrefix(key, "?") {
				out += lead + key + lead + ": " + g.flow(v, false) + "\n"
				continue
			}
			switch {
			case v.kind == 'm' && len(v.keys) > 0:
				out += lead + key + ":\n" + strings.Repeat(" ", indent+step) + g.block(v, indent+step, true)
			case v.kind == 's' && len(v.items) > 0:
				ind := indent + step
				if g.chance(0.3) {
					ind = indent // a sequence at its key's indentation
				}
				out += lead + key + ":\n" + strings.Repeat(" ", ind) + g.block(v, ind, true)
			default:
				out += lead + key + ": " + g.block(v, indent+step, true)
			}
		}
		return out
	}
	return ""
}

// deviceCase is one device-injector input.
func deviceCase(r *rand.Rand) Case {
	g := &gen{r: r}
	ctr := g.pick("c0", "c1", "ctr")
	ann := map[string]string{}
	kinds := 1 + g.r.Intn(2)
	for i := 0; i < kinds; i++ {
		k := g.r.Intn(4)
		key := deviceKinds[k][g.r.Intn(2)]
		switch g.r.Intn(4) {
		case 0:
			key += "/container." + ctr
		case 1:
			key += "/container." + g.pick("c0", "c1", "other")
		case 2:
			key += "/pod"
		}
		var val string
		switch k {
		case 0:
			val = g.document(deviceFields, false)
		case 1:
			val = g.document(nil, true)
		case 2:
			val = g.document(mountFields, false)
		case 3:
			g.anchors = nil
			g.wild = g.chance(0.4)
			g.names = ioprioClasses
			g.fields = ioprioFields
			top := g.anchorize(g.object(ioprioFields))
			if g.chance(0.1) {
				top = g.value('s')
			}
			if g.chance(0.3) {
				val = g.wrap(g.flow(top, true))
			} else {
				val = g.wrap(g.block(top, 0, false))
			}
			if g.chance(0.05) {
				val = ""
			}
		}
		ann[key] = val
	}
	if g.chance(0.003) {
		// Nesting deeper than the Rust port takes, in a field Go ignores.
		depth := 1001 + g.r.Intn(500)
		ann["devices.noderesource.dev"] = "- {path: /dev/deep, type: c, x: " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}\n"
	}
	c := Case{Plugin: "device-injector", Annotations: ann, Container: ctr}
	recordDevices(&c)
	return c
}

// ulimitCase is one ulimit-adjuster input.
func ulimitCase(r *rand.Rand) Case {
	g := &gen{r: r, names: rlimitTypes}
	ctr := g.pick("c0", "sleep")
	key := g.pick("ulimits.noderesource.dev", "ulimits.nri.containerd.io") + "/container." + g.pick(ctr, ctr, ctr, "other")
	fields := ulimitFields
	val := g.document(fields, false)
	ann := map[string]string{key: val}
	if g.chance(0.1) {
		ann[g.pick("ulimits.noderesource.dev", "ulimits.nri.containerd.io")+"/container."+ctr] = g.document(fields, false)
	}
	c := Case{Plugin: "ulimit-adjuster", Annotations: ann, Container: ctr}
	record(&c, func() (interface{}, error) { return runUlimitAdjuster(ann, ctr) })
	return c
}
