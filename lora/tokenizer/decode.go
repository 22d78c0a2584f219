package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// A decoder step rewrites the token strings, as Decoder::decode_chain does in
// tokenizers/src/decoders; the result is joined.
type decoder func(toks []decTok) []decTok

// decTok is a token string on its way to text; added tokens' content is never
// mapped back from byte-level characters.
type decTok struct {
	s     string
	added bool
}

type decoderJSON struct {
	Type          string        `json:"type"`
	Decoders      []decoderJSON `json:"decoders"`
	Pattern       *patternJSON  `json:"pattern"`
	Content       *string       `json:"content"`
	Start         int           `json:"start"`
	Stop          int           `json:"stop"`
	Replacement   *string       `json:"replacement"`
	PrependScheme *string       `json:"prepend_scheme"`
	AddPrefixSpc  *bool         `json:"add_prefix_space"`
}

func parseDecoder(raw json.RawMessage, byteLevel bool) (decoder, error) {
	if isNull(raw) {
		if byteLevel {
			return byteLevelDecode, nil
		}
		return nil, nil
	}
	var d decoderJSON
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	if g := growth(d, func(d decoderJSON) (string, *patternJSON, *string, []decoderJSON) {
		return d.Type, d.Pattern, d.Content, d.Decoders
	}); g > maxGrowth {
		return nil, fmt.Errorf("decoder: its Replace steps can grow text %g times: %w (at most %d)", g, ErrLimit, maxGrowth)
	}
	f, err := buildDecoder(d, 0)
	if err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	return f, nil
}

func buildDecoder(d decoderJSON, depth int) (decoder, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("nested deeper than %d", maxNesting)
	}
	switch d.Type {
	case "ByteLevel":
		return byteLevelDecode, nil
	case "Sequence":
		var steps []decoder
		for i, c := range d.Decoders {
			f, err := buildDecoder(c, depth+1)
			if err != nil {
				return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
			}
			steps = append(steps, f)
		}
		return func(toks []decTok) []decTok {
			for _, f := range steps {
				toks = f(toks)
			}
			return toks
		}, nil
	case "Replace":
		if d.Content == nil {
			return nil, fmt.Errorf(`Replace: no "content"`)
		}
		f, err := replacer(d.Pattern, *d.Content)
		if err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		return func(toks []decTok) []decTok {
			for i := range toks {
				toks[i].s = f(toks[i].s)
			}
			return toks
		}, nil
	case "ByteFallback":
		return byteFallbackDecode, nil
	case "Fuse":
		// decoders/fuse.rs: all tokens become one.
		return func(toks []decTok) []decTok {
			var b strings.Builder
			for _, t := range toks {
				b.WriteString(t.s)
			}
			return []decTok{{s: b.String(), added: true}}
		}, nil
	case "Strip":
		if d.Content == nil || utf8.RuneCountInString(*d.Content) != 1 || d.Start < 0 || d.Stop < 0 {
			return nil, fmt.Errorf("Strip: want one content character and non-negative start and stop")
		}
		c, _ := utf8.DecodeRuneInString(*d.Content)
		return stripDecode(c, d.Start, d.Stop), nil
	case "Metaspace":
		rep := metaspaceChar
		if d.Replacement != nil {
			rep = *d.Replacement
		}
		never := d.PrependScheme != nil && *d.PrependScheme == "never" || d.PrependScheme == nil && d.AddPrefixSpc != nil && !*d.AddPrefixSpc
		// decoders of pre_tokenizers/metaspace.rs: the replacement becomes a
		// space, except in the first token unless prepend_scheme is never.
		return func(toks []decTok) []decTok {
			for i := range toks {
				if i == 0 && !never {
					toks[i].s = strings.ReplaceAll(toks[i].s, rep, "")
				} else {
					toks[i].s = strings.ReplaceAll(toks[i].s, rep, " ")
				}
			}
			return toks
		}, nil
	}
	return nil, fmt.Errorf("%q: %w (want ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace or Sequence)", d.Type, ErrUnsupported)
}

// byteLevelDecode maps byte-level characters back to raw bytes. Invalid
// UTF-8 stays as raw bytes (Hugging Face would write U+FFFD), so
// Decode(Encode(s)) == s for every s.
func byteLevelDecode(toks []decTok) []decTok {
	for i, t := range toks {
		if !t.added {
			toks[i].s = string(fromByteLevel(nil, t.s))
		}
	}
	return toks
}

// byteFallbackDecode follows decoders/byte_fallback.rs: runs of <0xNN>
// tokens become their bytes when those are valid UTF-8, else one U+FFFD per
// byte.
func byteFallbackDecode(toks []decTok) []decTok {
	out := toks[:0:0]
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, decTok{s: string(pending)})
		} else {
			for range pending {
				out = append(out, decTok{s: "\uFFFD"})
			}
		}
		pending = pending[:0]
	}
	for _, t := range toks {
		if b, ok := byteToken(t.s); ok && !t.added {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

func byteToken(s string) (byte, bool) {
	if len(s) != 6 || !strings.HasPrefix(s, "<0x") || s[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range s[3:5] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = byte(c - '0')
		case c >= 'A' && c <= 'F':
			v = byte(c-'A') + 10
		case c >= 'a' && c <= 'f':
			v = byte(c-'a') + 10
		default:
			return 0, false
		}
		b = b<<4 | v
	}
	return b, true
}

// stripDecode follows decoders/strip.rs: up to start leading and stop
// trailing content characters are cut from each token.
func stripDecode(c rune, start, stop int) decoder {
	return func(toks []decTok) []decTok {
		for i, t := range toks {
			s := t.s
			for k := 0; k < start && strings.HasPrefix(s, string(c)); k++ {
				s = s[utf8.RuneLen(c):]
			}
			for k := 0; k < stop && strings.HasSuffix(s, string(c)); k++ {
				s = s[:len(s)-utf8.RuneLen(c)]
			}
			toks[i].s = s
		}
		return toks
	}
}
