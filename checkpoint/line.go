package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The line format: the JSON record, one space, the CRC-32C (Castagnoli) of
// the JSON bytes in 8 lowercase hex digits, "\n".
//
// The JSON is written and read by the hand-made codec below rather than by
// encoding/json, for two reasons:
//   - speed and memory: replaying a million-message journal must take well
//     under two seconds and allocate almost nothing per line;
//   - losslessness: encoding/json replaces invalid UTF-8 with U+FFFD, which
//     would silently change a key made of 8-bit folder names or IDs. Here an
//     invalid byte 0xXY is written as the lone low surrogate \udcXY (Python's
//     "surrogateescape"), which valid text never contains, and read back as
//     the byte. The lines stay valid JSON for any other reader.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Operations.
const (
	opHeader = "v1" // first line of every journal
	opIntent = "intent"
	opDone   = "done"
	opFlags  = "flags"
	opForget = "forget"
)

// appendLine appends r as one journal line to b.
func appendLine(b []byte, r *Record) []byte {
	start := len(b)
	b = append(b, `{"op":`...)
	b = appendString(b, r.Op)
	b = append(b, `,"k":`...)
	b = appendString(b, r.Key)
	if r.Folder != "" {
		b = append(b, `,"f":`...)
		b = appendString(b, r.Folder)
	}
	if r.Name != "" {
		b = append(b, `,"n":`...)
		b = appendString(b, r.Name)
	}
	if r.Size != 0 {
		b = append(b, `,"s":`...)
		b = strconv.AppendInt(b, r.Size, 10)
	}
	if r.SHA256 != "" {
		b = append(b, `,"h":`...)
		b = appendString(b, r.SHA256)
	}
	if r.MsgID != "" {
		b = append(b, `,"m":`...)
		b = appendString(b, r.MsgID)
	}
	if r.Receipt != "" {
		b = append(b, `,"r":`...)
		b = appendString(b, r.Receipt)
	}
	if r.Mark != "" {
		b = append(b, `,"mk":`...)
		b = appendString(b, r.Mark)
	}
	if len(r.Flags) > 0 {
		b = append(b, `,"fl":[`...)
		for i, f := range r.Flags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f)
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	sum := crc32.Checksum(b[start:], castagnoli)
	b = append(b, ' ')
	b = appendHex32(b, sum)
	return append(b, '\n')
}

const hexdigits = "0123456789abcdef"

func appendHex32(b []byte, v uint32) []byte {
	for i := 28; i >= 0; i -= 4 {
		b = append(b, hexdigits[(v>>uint(i))&0xf])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexdigits[c>>4], hexdigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			// Invalid byte: surrogate escape, \udcXY.
			b = append(b, '\\', 'u', 'd', 'c', hexdigits[c>>4], hexdigits[c&0xf])
			i++
			continue
		}
		b = append(b, s[i:i+n]...)
		i += n
	}
	return append(b, '"')
}

// rawRecord is a parsed line whose strings point into the line or into a
// scratch buffer; nothing is allocated. Flags are joined with NUL bytes.
type rawRecord struct {
	op, key, folder, name, sha, msgID, receipt, mark []byte
	size                                             int64
	flags                                            []byte
	nflags                                           int
}

var (
	errTorn     = errors.New("incomplete line")
	errChecksum = errors.New("checksum mismatch")
)

// checkLine verifies the framing and checksum of one line (with its "\n")
// and returns the JSON part.
func checkLine(line []byte) ([]byte, error) {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		return nil, errTorn
	}
	line = line[:len(line)-1]
	if len(line) < 10 || line[len(line)-9] != ' ' {
		return nil, errChecksum
	}
	js := line[:len(line)-9]
	var want uint32
	for _, c := range line[len(line)-8:] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return nil, errChecksum
		}
		want = want<<4 | uint32(d)
	}
	if crc32.Checksum(js, castagnoli) != want {
		return nil, errChecksum
	}
	return js, nil
}

// parseRaw parses one line (with "\n") into r. The scratch buffers are
// reused (returned grown); r's strings may point into them or into line.
func parseRaw(line []byte, r *rawRecord, sc *scratch) error {
	return parseRawMode(line, r, sc, false)
}

// parseRawMode is parseRaw; lazy leaves every string but op, key and flags
// unparsed (nil), for replay.
func parseRawMode(line []byte, r *rawRecord, sc *scratch, lazy bool) error {
	js, err := checkLine(line)
	if err != nil {
		return err
	}
	*r = rawRecord{}
	p := parser{s: js, out: sc.out[:0], fl: sc.fl[:0], lazy: lazy}
	if lazy {
		ok, err := p.canonical(r)
		sc.out, sc.fl = p.out, p.fl
		if ok || err != nil {
			return err
		}
		*r = rawRecord{}
		p = parser{s: js, out: sc.out[:0], fl: sc.fl[:0], lazy: lazy}
	}
	err = p.object(r)
	sc.out, sc.fl = p.out, p.fl
	if err != nil {
		return err
	}
	if r.op == nil || r.key == nil {
		return errors.New(`record without "op" or "k"`)
	}
	return nil
}

// ParseLine parses one journal line, including its checksum and final "\n".
func ParseLine(line []byte) (Record, error) {
	var raw rawRecord
	var sc scratch
	if err := parseRaw(line, &raw, &sc); err != nil {
		return Record{}, err
	}
	return raw.record(), nil
}

func (r *rawRecord) record() Record {
	rec := Record{
		Op: string(r.op), Key: string(r.key), Folder: string(r.folder), Name: string(r.name),
		Size: r.size, SHA256: string(r.sha), MsgID: string(r.msgID), Receipt: string(r.receipt), Mark: string(r.mark),
	}
	if r.nflags > 0 {
		rec.Flags = strings.Split(string(r.flags), "\x00")
	}
	return rec
}

// scratch holds reusable parse buffers. Strings from one parse stay valid
// until the next parse with the same scratch.
type scratch struct{ out, fl []byte }

type parser struct {
	s    []byte
	i    int
	out  []byte // scratch for unescaped strings
	fl   []byte // scratch for the joined flags
	lazy bool   // leave all strings but op and key unparsed (replay)
}

// canonical is the replay fast path for lines as appendLine writes them:
// "op" and "k" first, "fl" (if any) last, so the fields in between need not
// be scanned: `,"fl":[` cannot occur inside a JSON string, whose quotes are
// escaped. ok=false means "not canonical, use the general parser".
func (p *parser) canonical(r *rawRecord) (ok bool, err error) {
	const pre = `{"op":`
	if !bytes.HasPrefix(p.s, []byte(pre)) {
		return false, nil
	}
	p.i = len(pre)
	if r.op, err = p.str(); err != nil {
		return false, nil
	}
	const k = `,"k":`
	if !bytes.HasPrefix(p.s[p.i:], []byte(k)) {
		return false, nil
	}
	p.i += len(k)
	if r.key, err = p.str(); err != nil {
		return false, nil
	}
	rest := p.s[p.i:]
	switch {
	case len(rest) == 1 && rest[0] == '}':
		return true, nil
	case len(rest) == 0 || rest[0] != ',':
		return false, nil
	case bytes.HasSuffix(rest, []byte("]}")):
		const fl = `,"fl":`
		i := bytes.LastIndex(rest, []byte(fl))
		if i < 0 {
			return false, nil
		}
		p.i += i + len(fl)
		if p.flags(r) != nil || p.i != len(p.s)-1 {
			return false, nil
		}
		return true, nil
	case bytes.HasSuffix(rest, []byte("}")) && !bytes.Contains(rest, []byte(`"fl"`)):
		return true, nil
	}
	return false, nil
}

// skipStr moves past a string without decoding it.
func (p *parser) skipStr() error {
	if err := p.expect('"'); err != nil {
		return err
	}
	for {
		q := bytes.IndexByte(p.s[p.i:], '"')
		if q < 0 {
			return errors.New("unterminated string")
		}
		end := p.i + q
		bs := 0
		for k := end - 1; k >= p.i && p.s[k] == '\\'; k-- {
			bs++
		}
		p.i = end + 1
		if bs%2 == 0 {
			return nil
		}
	}
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) expect(c byte) error {
	p.ws()
	if p.i >= len(p.s) || p.s[p.i] != c {
		return fmt.Errorf("expected %q at byte %d", c, p.i)
	}
	p.i++
	return nil
}

func (p *parser) peek() byte {
	p.ws()
	if p.i >= len(p.s) {
		return 0
	}
	return p.s[p.i]
}

func (p *parser) object(r *rawRecord) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	seen := 0
	if p.peek() == '}' {
		p.i++
		return p.end()
	}
	for {
		k, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		var bit int
		var dst *[]byte
		switch string(k) {
		case "op":
			bit, dst = 1, &r.op
		case "k":
			bit, dst = 2, &r.key
		case "f":
			bit, dst = 4, &r.folder
		case "n":
			bit, dst = 8, &r.name
		case "h":
			bit, dst = 16, &r.sha
		case "m":
			bit, dst = 32, &r.msgID
		case "r":
			bit, dst = 64, &r.receipt
		case "s":
			bit = 128
		case "fl":
			bit = 256
		case "mk":
			bit, dst = 512, &r.mark
		default:
			return fmt.Errorf("unknown field %q", k)
		}
		if seen&bit != 0 {
			return fmt.Errorf("duplicate field %q", k)
		}
		seen |= bit
		switch {
		case dst != nil && p.lazy && bit > 2:
			// Replay needs only op, key and flags: skip the other strings.
			if err := p.skipStr(); err != nil {
				return err
			}
			*dst = nil
		case dst != nil:
			v, err := p.str()
			if err != nil {
				return err
			}
			if v == nil {
				v = []byte{}
			}
			*dst = v
		case bit == 128:
			if r.size, err = p.int(); err != nil {
				return err
			}
		default:
			if err := p.flags(r); err != nil {
				return err
			}
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return p.end()
		default:
			return fmt.Errorf("expected ',' or '}' at byte %d", p.i)
		}
	}
}

func (p *parser) end() error {
	p.ws()
	if p.i != len(p.s) {
		return fmt.Errorf("trailing data at byte %d", p.i)
	}
	return nil
}

func (p *parser) flags(r *rawRecord) error {
	if err := p.expect('['); err != nil {
		return err
	}
	if p.peek() == ']' {
		p.i++
		return nil
	}
	p.fl = p.fl[:0]
	for {
		v, err := p.str()
		if err != nil {
			return err
		}
		for _, c := range v {
			if c == 0 {
				return errors.New("flag with a NUL byte")
			}
		}
		if r.nflags > 0 {
			p.fl = append(p.fl, 0)
		}
		p.fl = append(p.fl, v...)
		r.nflags++
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			r.flags = p.fl
			return nil
		default:
			return fmt.Errorf("expected ',' or ']' at byte %d", p.i)
		}
	}
}

func (p *parser) int() (int64, error) {
	p.ws()
	start := p.i
	neg := false
	if p.i < len(p.s) && p.s[p.i] == '-' {
		neg = true
		p.i++
	}
	var v int64
	digits := 0
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		if digits == 1 && v == 0 {
			return 0, fmt.Errorf("leading zero in number at byte %d", start)
		}
		d := int64(p.s[p.i] - '0')
		if v > (1<<63-1-d)/10 {
			return 0, fmt.Errorf("number too large at byte %d", start)
		}
		v = v*10 + d
		digits++
		p.i++
	}
	if digits == 0 {
		return 0, fmt.Errorf("expected a number at byte %d", start)
	}
	if p.i < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		return 0, fmt.Errorf("size is not an integer at byte %d", start)
	}
	if neg {
		v = -v
	}
	return v, nil
}

// str parses a JSON string. Without escapes it returns a sub-slice of the
// input; otherwise the unescaped bytes are appended to p.out.
func (p *parser) str() ([]byte, error) {
	if err := p.expect('"'); err != nil {
		return nil, err
	}
	start := p.i
	// Fast path: no escape before the closing quote.
	if q := bytes.IndexByte(p.s[start:], '"'); q >= 0 {
		seg := p.s[start : start+q : start+q]
		if bytes.IndexByte(seg, '\\') < 0 {
			if hasControl(seg) {
				return nil, fmt.Errorf("control character in string at byte %d", start)
			}
			p.i = start + q + 1
			return seg, nil
		}
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			p.i++
			return p.s[start : p.i-1 : p.i-1], nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return nil, fmt.Errorf("control character in string at byte %d", p.i)
		}
		p.i++
	}
	o := len(p.out)
	p.out = append(p.out, p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return p.out[o:len(p.out):len(p.out)], nil
		case c < 0x20:
			return nil, fmt.Errorf("control character in string at byte %d", p.i)
		case c != '\\':
			// Copy the run up to the next quote or backslash.
			j := p.i + 1
			for j < len(p.s) && p.s[j] != '"' && p.s[j] != '\\' && p.s[j] >= 0x20 {
				j++
			}
			p.out = append(p.out, p.s[p.i:j]...)
			p.i = j
			continue
		}
		if p.i+1 >= len(p.s) {
			return nil, errors.New("unterminated escape")
		}
		e := p.s[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			p.out = append(p.out, e)
		case 'b':
			p.out = append(p.out, '\b')
		case 'f':
			p.out = append(p.out, '\f')
		case 'n':
			p.out = append(p.out, '\n')
		case 'r':
			p.out = append(p.out, '\r')
		case 't':
			p.out = append(p.out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, errors.New(`bad \u escape`)
			}
			switch {
			case r >= 0xdc80 && r <= 0xdcff:
				p.out = append(p.out, byte(r)) // surrogate escape of an invalid byte
			case utf16.IsSurrogate(r) && r < 0xdc00:
				if p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
					p.i += 2
					r2, ok := p.hex4()
					if ok {
						if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
							p.out = utf8.AppendRune(p.out, c)
							continue
						}
					}
				}
				return nil, errors.New("unpaired surrogate in string")
			case utf16.IsSurrogate(r):
				return nil, errors.New("unpaired surrogate in string")
			default:
				p.out = utf8.AppendRune(p.out, r)
			}
		default:
			return nil, fmt.Errorf("bad escape %q", e)
		}
	}
	return nil, errors.New("unterminated string")
}

// hasControl reports whether b has a byte below 0x20, eight bytes at a time.
func hasControl(b []byte) bool {
	const lo, hi = 0x2020202020202020, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x-lo)&^x&hi != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range p.s[p.i : p.i+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.i += 4
	return r, true
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
