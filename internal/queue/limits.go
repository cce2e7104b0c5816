package queue

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits shared by every backend, set to SQS's so that code developed against
// the embedded queue cannot rely on something production refuses.
const (
	MaxBodyBytes   = 256 << 10
	MaxBatch       = 10
	MaxVisibility  = 12 * time.Hour
	MaxWait        = 20 * time.Second
	maxDeadLetters = 1000
)

// checkBody accepts what SQS accepts: 1 to MaxBodyBytes of UTF-8 made of
// tab, newline, carriage return and characters from U+0020 up, excluding
// surrogates and U+FFFE/U+FFFF.
func checkBody(body []byte) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidBody)
	}
	if len(body) > MaxBodyBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidBody, len(body), MaxBodyBytes)
	}
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrInvalidBody, i)
		}
		if !allowedRune(r) {
			return fmt.Errorf("%w: character %U at byte %d not allowed", ErrInvalidBody, r, i)
		}
		i += size
	}
	return nil
}

func allowedRune(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return true
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

func checkReceive(max int, visibility, wait time.Duration) error {
	if max < 1 || max > MaxBatch {
		return fmt.Errorf("queue: receive: max %d out of range 1..%d", max, MaxBatch)
	}
	// A zero visibility would make a message visible again the moment it was
	// handed out, and the SQS SDK omits a zero so the queue default applies
	// instead; refusing it keeps both backends alike.
	if visibility < time.Second || visibility > MaxVisibility {
		return fmt.Errorf("queue: receive: visibility %v out of range 1s..%v", visibility, MaxVisibility)
	}
	if wait < 0 || wait > MaxWait {
		return fmt.Errorf("queue: receive: wait %v out of range 0..%v", wait, MaxWait)
	}
	return nil
}

func checkVisibility(v time.Duration) error {
	if v < 0 || v > MaxVisibility {
		return fmt.Errorf("queue: visibility %v out of range 0..%v", v, MaxVisibility)
	}
	return nil
}
