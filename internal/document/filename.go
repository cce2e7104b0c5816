package document

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxFilenameBytes is the longest filename accepted, in bytes of UTF-8
// after NFC normalisation: the 255-byte name limit of ext4, XFS, Btrfs and
// APFS, so a name that was a file's name somewhere fits, and every stored
// document's name is small.
const MaxFilenameBytes = 255

// Why a filename was refused; NormalizeFilename's errors are *FilenameError
// wrapping one of these.
var (
	ErrFilenameTooLong  = errors.New("document: filename too long")
	ErrFilenameControl  = errors.New("document: filename contains a control character")
	ErrFilenameEncoding = errors.New("document: filename is not valid UTF-8")
)

// FilenameError says what is wrong with a filename without quoting it
// (filenames are never logged).
type FilenameError struct {
	Reason error // ErrFilenameTooLong, ErrFilenameControl or ErrFilenameEncoding
	Bytes  int   // the normalised length, for ErrFilenameTooLong
	Char   rune  // the first control character, for ErrFilenameControl
}

func (e *FilenameError) Error() string {
	switch e.Reason {
	case ErrFilenameTooLong:
		return fmt.Sprintf("%v: %d bytes, the limit is %d", e.Reason, e.Bytes, MaxFilenameBytes)
	case ErrFilenameControl:
		return fmt.Sprintf("%v (%U)", e.Reason, e.Char)
	}
	return e.Reason.Error()
}

func (e *FilenameError) Unwrap() error { return e.Reason }

// NormalizeFilename returns name as it is stored and shown: Unicode NFC (so
// a name typed on macOS, which decomposes accents, and the same name typed
// elsewhere are one name and one length). It refuses invalid UTF-8, any
// control character (C0, DEL, C1: they would reach terminals and logs of
// whoever downloads the list) and names over MaxFilenameBytes. The empty
// name is allowed: the multipart field may carry none.
func NormalizeFilename(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", &FilenameError{Reason: ErrFilenameEncoding}
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", &FilenameError{Reason: ErrFilenameControl, Char: r}
		}
	}
	n := norm.NFC.String(name)
	if len(n) > MaxFilenameBytes {
		return "", &FilenameError{Reason: ErrFilenameTooLong, Bytes: len(n)}
	}
	return n, nil
}
