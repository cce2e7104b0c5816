package planestore_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
)

var (
	boss = planestore.Principal{Kind: planestore.KindStaff, ID: "st_boss", Name: "boss@vendor.example", Role: planestore.RoleAdmin}
	// staffAna is a support engineer signed in through the vendor's
	// identity provider.
	staffAna = planestore.Principal{Kind: planestore.KindStaff, ID: "https://idp.vendor.example|ana", Name: "ana@vendor.example", Role: planestore.RoleSupport}
	// staffIssuer is a staff member's identity provider in store tests.
	staffIssuer = "https://login.vendor.example"
)

func TestStaffStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		alice, err := b.store.AddStaff(b.ctx, planestore.StaffInput{Issuer: staffIssuer, Subject: "00u-alice", Name: "alice@vendor.example", Role: planestore.RoleSupport}, boss)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.AddStaff(b.ctx, planestore.StaffInput{Issuer: staffIssuer, Subject: "00u-alice", Name: "other", Role: planestore.RoleViewer}, boss); !errors.Is(err, planestore.ErrExists) {
			t.Fatalf("adding the same issuer and subject again: %v, want ErrExists", err)
		}
		// Bad input is refused with the rule, and nothing is stored.
		for _, in := range []planestore.StaffInput{
			{Issuer: "login.vendor.example", Subject: "x", Name: "x", Role: planestore.RoleViewer},
			{Issuer: staffIssuer, Subject: "bad\nsubject", Name: "x", Role: planestore.RoleViewer},
			{Issuer: staffIssuer, Subject: "x", Name: "", Role: planestore.RoleViewer},
			{Issuer: staffIssuer, Subject: "x", Name: "x", Role: "root"},
		} {
			if _, err := b.store.AddStaff(b.ctx, in, boss); err == nil {
				t.Errorf("AddStaff(%+v) accepted", in)
			}
		}
		got, err := b.store.StaffBySubject(b.ctx, staffIssuer, "00u-alice")
		if err != nil || got.ID != alice.ID || got.Role != planestore.RoleSupport {
			t.Fatalf("StaffBySubject = %+v, %v", got, err)
		}
		if _, err := b.store.StaffBySubject(b.ctx, "https://other.example", "00u-alice"); !errors.Is(err, planestore.ErrNotFound) {
			t.Fatalf("same subject at another issuer: %v, want ErrNotFound", err)
		}
		if m, err := b.store.SetStaffRole(b.ctx, alice.ID, planestore.RoleRelease, boss); err != nil || m.Role != planestore.RoleRelease {
			t.Fatalf("SetStaffRole = %+v, %v", m, err)
		}
		if _, err := b.store.SetStaffRole(b.ctx, "st_nobody", planestore.RoleViewer, boss); !errors.Is(err, planestore.ErrNotFound) {
			t.Fatalf("SetStaffRole of nobody: %v", err)
		}
		list, err := b.store.Staff(b.ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("Staff = %+v, %v", list, err)
		}
		if err := b.store.RemoveStaff(b.ctx, alice.ID, boss); err != nil {
			t.Fatal(err)
		}
		if err := b.store.RemoveStaff(b.ctx, alice.ID, boss); !errors.Is(err, planestore.ErrNotFound) {
			t.Fatalf("removing twice: %v", err)
		}
		// Each change is in the audit log with who made it; the refused
		// ones are not.
		recs, err := b.store.Audit(b.ctx, planestore.AuditFilter{Actor: boss.ID})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, r := range recs {
			actions = append(actions, r.Action)
			if r.Actor != boss || r.Target != alice.ID {
				t.Errorf("record %+v: want actor %v, target %s", r, boss, alice.ID)
			}
		}
		if strings.Join(actions, " ") != "staff.remove staff.set-role staff.add" {
			t.Fatalf("audit actions newest first: %v", actions)
		}
	})
}

func TestTokenStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		exp := b.clock.Now().Add(time.Hour)
		tok, secret, err := b.store.CreateToken(b.ctx, planestore.TokenInput{Name: "release-ci", Role: planestore.RoleRelease, ExpiresAt: &exp}, boss)
		if err != nil {
			t.Fatal(err)
		}
		if err := planestore.ParseToken(secret); err != nil {
			t.Fatalf("created secret %q does not parse: %v", secret, err)
		}
		p, ok, err := b.store.TokenPrincipal(b.ctx, secret)
		if err != nil || !ok || p != (planestore.Principal{Kind: planestore.KindToken, ID: tok.ID, Name: "release-ci", Role: planestore.RoleRelease}) {
			t.Fatalf("TokenPrincipal = %+v, %v, %v", p, ok, err)
		}
		// One character off is another token: refused.
		wrong := secret[:len(secret)-1] + map[bool]string{true: "A", false: "B"}[secret[len(secret)-1] != 'A']
		if _, ok, _ := b.store.TokenPrincipal(b.ctx, wrong); ok {
			t.Fatal("a token one character off was accepted")
		}
		list, err := b.store.Tokens(b.ctx)
		if err != nil || len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(b.clock.Now()) {
			t.Fatalf("Tokens = %+v, %v; want one, last used now", list, err)
		}
		raw, _ := json.Marshal(list)
		if strings.Contains(string(raw), secret[len(planestore.TokenPrefix):]) {
			t.Fatal("the token list carries the secret")
		}
		b.clock.Advance(time.Hour)
		if _, ok, _ := b.store.TokenPrincipal(b.ctx, secret); ok {
			t.Fatal("an expired token was accepted")
		}

		_, forever, err := b.store.CreateToken(b.ctx, planestore.TokenInput{Name: "fleet-report", Role: planestore.RoleViewer}, boss)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := b.store.TokenPrincipal(b.ctx, forever); !ok {
			t.Fatal("a token without expiry was refused")
		}
		ts, _ := b.store.Tokens(b.ctx)
		if _, err := b.store.RevokeToken(b.ctx, ts[0].ID, boss); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := b.store.TokenPrincipal(b.ctx, forever); ok {
			t.Fatal("a revoked token was accepted")
		}
		if _, err := b.store.RevokeToken(b.ctx, ts[0].ID, boss); !errors.Is(err, planestore.ErrNotFound) {
			t.Fatalf("revoking twice: %v", err)
		}
		past := b.clock.Now().Add(-time.Second)
		if _, _, err := b.store.CreateToken(b.ctx, planestore.TokenInput{Name: "late", Role: planestore.RoleViewer, ExpiresAt: &past}, boss); err == nil {
			t.Fatal("a token expiring in the past was created")
		}
		recs, _ := b.store.Audit(b.ctx, planestore.AuditFilter{Action: "token.create"})
		if len(recs) != 2 {
			t.Fatalf("token.create records: %+v", recs)
		}
	})
}

func TestAuditFilters(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		sup := planestore.Principal{Kind: planestore.KindToken, ID: "tk_1", Name: "support-bot", Role: planestore.RoleSupport}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(b.store.AppendAudit(b.ctx, sup, planestore.AuditEntry{Action: "diagnostics.request", Customer: "Acme", InstallID: "in_a", Reason: "slow"}))
		b.clock.Advance(time.Minute)
		since := b.clock.Now()
		must(b.store.AppendAudit(b.ctx, boss, planestore.AuditEntry{Action: "install.revoke", Customer: "Acme", InstallID: "in_a"}))
		must(b.store.AppendAudit(b.ctx, boss, planestore.AuditEntry{Action: "install.revoke", Customer: "Globex", InstallID: "in_b"}))
		for _, tc := range []struct {
			f    planestore.AuditFilter
			want int
		}{
			{planestore.AuditFilter{}, 3},
			{planestore.AuditFilter{Customer: "Acme"}, 2},
			{planestore.AuditFilter{InstallID: "in_b"}, 1},
			{planestore.AuditFilter{Actor: "support-bot"}, 1},
			{planestore.AuditFilter{Actor: "st_boss"}, 2},
			{planestore.AuditFilter{Action: "install.revoke", Customer: "Acme"}, 1},
			{planestore.AuditFilter{Since: since}, 2},
			{planestore.AuditFilter{Limit: 1}, 1},
		} {
			recs, err := b.store.Audit(b.ctx, tc.f)
			if err != nil || len(recs) != tc.want {
				t.Errorf("Audit(%+v) = %d records (%v), want %d", tc.f, len(recs), err, tc.want)
			}
		}
		recs, _ := b.store.Audit(b.ctx, planestore.AuditFilter{Limit: 1})
		if recs[0].Customer != "Globex" || recs[0].Actor != boss {
			t.Errorf("newest record %+v", recs[0])
		}
	})
}

// The one administrator can be neither removed nor demoted: nobody could
// manage staff again, and a plane without the admin token would not start.
func TestLastAdministratorStays(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		ann, err := b.store.AddStaff(b.ctx, planestore.StaffInput{Issuer: staffIssuer, Subject: "00u-ann", Name: "ann@vendor.example", Role: planestore.RoleAdmin}, boss)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.SetStaffRole(b.ctx, ann.ID, planestore.RoleViewer, boss); !errors.Is(err, planestore.ErrLastAdministrator) {
			t.Fatalf("demoting the only administrator: %v, want ErrLastAdministrator", err)
		}
		if err := b.store.RemoveStaff(b.ctx, ann.ID, boss); !errors.Is(err, planestore.ErrLastAdministrator) {
			t.Fatalf("removing the only administrator: %v, want ErrLastAdministrator", err)
		}
		if n, err := b.store.Administrators(b.ctx); err != nil || n != 1 {
			t.Fatalf("administrators after the refusals: %d, %v", n, err)
		}
		bob, err := b.store.AddStaff(b.ctx, planestore.StaffInput{Issuer: staffIssuer, Subject: "00u-bob", Name: "bob@vendor.example", Role: planestore.RoleAdmin}, boss)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.SetStaffRole(b.ctx, ann.ID, planestore.RoleViewer, boss); err != nil {
			t.Fatalf("demoting one of two administrators: %v", err)
		}
		if err := b.store.RemoveStaff(b.ctx, bob.ID, boss); !errors.Is(err, planestore.ErrLastAdministrator) {
			t.Fatalf("removing the administrator left: %v, want ErrLastAdministrator", err)
		}
	})
}
