package tokenizer

import "unicode/utf8"

// byteToRune is GPT-2's reversible byte-to-unicode table: printable Latin-1
// bytes map to themselves, the others to U+0100 onwards, so every byte string
// becomes a string of printable characters without spaces.
var (
	byteToRune [256]rune
	runeToByte = make(map[rune]byte, 256)
	byteToStr  [256]string
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
		byteToStr[b] = string(byteToRune[b])
	}
}

// toByteLevel maps raw bytes to their byte-level characters.
func toByteLevel(s string) string {
	buf := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		buf = utf8.AppendRune(buf, byteToRune[s[i]])
	}
	return string(buf)
}

// fromByteLevel maps byte-level characters back to raw bytes; characters
// outside the table are kept as their UTF-8 encoding.
func fromByteLevel(dst []byte, s string) []byte {
	for _, r := range s {
		if b, ok := runeToByte[r]; ok {
			dst = append(dst, b)
		} else {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
