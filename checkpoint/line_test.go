package checkpoint

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLineRoundTrip(t *testing.T) {
	recs := []Record{
		{Op: "v1"},
		testRecord(1),
		{Op: "done", Key: "a\x1fb", Receipt: "1:2", Flags: []string{`\Seen`, "$Label1"}, Size: 1},
		{Op: "intent", Key: "\xff\xfe\"\\/\x00\x7f\u2028", MsgID: "<😀@x>", Folder: "الأرشيف"},
	}
	for _, r := range recs {
		line := appendLine(nil, &r)
		got, err := ParseLine(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
		js := line[:len(line)-10]
		if !json.Valid(js) {
			t.Errorf("not valid JSON: %s", js)
		}
		if utf8.ValidString(r.Key) {
			var std Record
			if err := json.Unmarshal(js, &std); err != nil || !reflect.DeepEqual(std, r) {
				t.Errorf("encoding/json disagrees: %+v %v", std, err)
			}
		}
	}
}

func TestParseLineRejects(t *testing.T) {
	good := appendLine(nil, &Record{Op: "intent", Key: "k", Size: 5})
	tests := map[string][]byte{
		"no newline":   good[:len(good)-1],
		"bad checksum": append(bytes.Clone(good[:len(good)-2]), 'x', '\n'),
		"flipped byte": bytes.Replace(good, []byte(`"k"`), []byte(`"j"`), 1),
		"empty":        {},
		"short":        []byte("x\n"),
	}
	for name, in := range tests {
		if _, err := ParseLine(in); err == nil {
			t.Errorf("%s: accepted %q", name, in)
		}
	}
	// Well-framed lines with bad JSON.
	for _, js := range []string{`{"op":"x"}`, `{"op":"x","k":"a","zz":1}`, `{"op":"x","k":"a","s":1.5}`,
		`{"op":"x","k":"a","k":"b"}`, `{"op":"x","k":"\ud800"}`, `{"op":"x","k":"a"} x`, `{"op":"x","k":"a","s":012}`,
		`{"op":"x","k":"a","fl":["\u0000"]}`} {
		if _, err := ParseLine(frame(js)); err == nil {
			t.Errorf("accepted %s", js)
		}
	}
}

func frame(js string) []byte {
	b := []byte(js)
	b = append(b, ' ')
	b = appendHex32(b, crc32c([]byte(js)))
	return append(b, '\n')
}

func FuzzParseLine(f *testing.F) {
	f.Add(appendLine(nil, &Record{Op: "v1"}))
	f.Add(appendLine(nil, &Record{Op: "done", Key: "INBOX\x1f1\x1f2", Receipt: "1:2", Flags: []string{`\Seen`}, Size: 3}))
	f.Add(frame(`{ "op" : "intent" , "k" : "\u00e9\ud83d\ude00\udcff" , "fl" : [ ] }`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseLine(line)
		if err != nil {
			// Also feed the JSON part with a fresh checksum.
			if i := bytes.LastIndexByte(line, ' '); i > 0 {
				line = frame(string(line[:i]))
				if r, err = ParseLine(line); err != nil {
					return
				}
			} else {
				return
			}
		}
		// The replay fast path agrees with the full parser.
		var raw rawRecord
		var sc scratch
		if err := parseRawMode(line, &raw, &sc, true); err != nil {
			t.Fatalf("lazy parse failed where the full one succeeded: %v", err)
		}
		if lr := raw.record(); lr.Op != r.Op || lr.Key != r.Key || !reflect.DeepEqual(lr.Flags, r.Flags) {
			t.Fatalf("lazy parse disagrees:\n%+v\n%+v", lr, r)
		}
		again := appendLine(nil, &r)
		r2, err := ParseLine(again)
		if err != nil {
			t.Fatalf("re-encoded line does not parse: %q: %v", again, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, r2)
		}
		js := line[:len(line)-10]
		if utf8.Valid(js) && !bytes.Contains(bytes.ToLower(js), []byte(`\udc`)) {
			var std Record
			if err := json.Unmarshal(js, &std); err != nil {
				t.Fatalf("encoding/json rejects what ParseLine accepts: %s: %v", js, err)
			}
			if len(std.Flags) == 0 {
				std.Flags = nil
			}
			if !reflect.DeepEqual(std, r) {
				t.Fatalf("encoding/json disagrees:\n%+v\n%+v", std, r)
			}
		}
	})
}

func TestFuzzSeedCorpus(t *testing.T) {
	for name, wantOK := range map[string]bool{"header": true, "intent": true, "done_flags": true, "escapes": true, "torn": false} {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParseLine", name))
		if err != nil {
			t.Fatal(err)
		}
		lit := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[1], "[]byte("), ")\n")
		s, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := ParseLine([]byte(s)); (err == nil) != wantOK {
			t.Errorf("%s: ParseLine error %v, want ok=%v", name, err, wantOK)
		}
	}
}
