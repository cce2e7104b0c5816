package worker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tetherhq/tether/internal/analyze"
	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/extract"
)

// Every reason the worker records maps to its failure class, so that
// 'docsvc jobs dead-letters' can show a fixed code instead of the text.
func TestFailureClass(t *testing.T) {
	t.Parallel()
	gaveUp := func(err error) string { return fmt.Sprintf("gave up after %d attempts: %s", 5, errorClass(err)) }
	for _, c := range []struct {
		reason, want string
	}{
		{gaveUp(analyze.ErrUnavailable), ClassAIProvider},
		{gaveUp(fmt.Errorf("x: %w", analyze.ErrAuth)), ClassAIProvider},
		{gaveUp(blob.ErrNotFound), ClassBlobMissing},
		{gaveUp(errors.New("disk full")), ClassInternal},
		{fmt.Sprintf("gave up after %d attempts: %s (the worker was restarted or crashed on this document)", 5, gaveUpWorkerStopped), ClassWorkerStopped},
		{reason(extract.ErrEncrypted), ClassUnreadable},
		{"gave up after 5 attempts: something a later release records", ClassInternal},
	} {
		if got := FailureClass(c.reason); got != c.want {
			t.Errorf("FailureClass(%q) = %q, want %q", c.reason, got, c.want)
		}
	}
}
