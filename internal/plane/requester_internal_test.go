package plane

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/sqldb"
)

// A diagnostics request is refused, and nothing recorded, when its
// principal cannot be named to the customer. Today only the admin token
// reaches the handler, so the principal is set here directly.
func TestDiagRequestNeedsANamedRequester(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }
	st, err := planestore.Open(ctx, db, now)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now,
		DataDir: t.TempDir(), AdminToken: strings.Repeat("t", 32)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddLicense(ctx, planestore.LicenseRecord{ID: "lic_a", Customer: "A", IssuedAt: now(), ExpiresAt: now().Add(time.Hour),
		Channels: []string{"stable"}, TokenHash: "h"}); err != nil {
		t.Fatal(err)
	}
	in, err := st.Activate(ctx, "h", make([]byte, 32), "1.4.0", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []planestore.Principal{
		{},
		{Kind: planestore.KindStaff, Name: ""},
		{Kind: planestore.KindStaff, Name: "eve\x1b[2J@vendor.example"},
		{Kind: "robot", Name: "cron"},
	} {
		body := `{"install_id":"` + in.ID + `","reason":"queue stuck"}`
		req := httptest.NewRequest(http.MethodPost, "/v1/admin/diagnostics", bytes.NewReader([]byte(body)))
		rec := httptest.NewRecorder()
		s.handleAdminRequestDiag(rec, req.WithContext(withPrincipal(ctx, p)))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "cannot be named to the customer") {
			t.Errorf("principal %+v: %d %s", p, rec.Code, rec.Body)
		}
	}
	if ds, err := st.Diagnostics(ctx, "", ""); err != nil || len(ds) != 0 {
		t.Fatalf("recorded %+v %v", ds, err)
	}
}
