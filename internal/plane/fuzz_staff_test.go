package plane_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
)

// FuzzParseAuditQuery: the audit log's query string.
func FuzzParseAuditQuery(f *testing.F) {
	f.Add("customer=Acme&install=in_a&actor=alice&action=install.revoke&since=2026-11-01T00:00:00Z&limit=10")
	f.Add("limit=-1&since=yesterday")
	f.Add("install=../x&customer=%00")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		af, err := plane.ParseAuditQuery(q)
		if err != nil {
			return
		}
		if af.Limit < 0 || af.Limit > planestore.MaxAuditLimit {
			t.Fatalf("limit %d accepted", af.Limit)
		}
		if strings.ContainsAny(af.InstallID, "/. \n") || strings.ContainsAny(af.Customer+af.Actor, "\x00\n\r") {
			t.Fatalf("accepted %+v", af)
		}
	})
}

// FuzzReleaseAuditBody: what a release command reports to the audit log.
func FuzzReleaseAuditBody(f *testing.F) {
	f.Add("release.publish", "stable", "1.4.0", "")
	f.Add("install.revoke", "../x", "1.4", "a\nb")
	f.Fuzz(func(t *testing.T, action, channel, version, reason string) {
		b := plane.ReleaseAuditBody{Action: action, Channel: channel, Version: version, Reason: reason}
		if b.Validate() != nil {
			return
		}
		if !strings.HasPrefix(action, "release.") || strings.ContainsAny(channel+version, "/ \n") || strings.ContainsAny(reason, "\n\r") {
			t.Fatalf("accepted %+v", b)
		}
	})
}
