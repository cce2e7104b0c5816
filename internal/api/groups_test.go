package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tetherhq/tether/internal/api"
	"github.com/tetherhq/tether/internal/auth"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

// TestSharedGroups: with DOCSVC_OIDC_GROUPS_CLAIM and _SHARED_GROUPS set,
// members of a shared group see (list, read, result) each other's
// documents, only the uploader deletes, and anyone else still gets 404.
// Membership is what the verified token says at each request.
func TestSharedGroups(t *testing.T) {
	p := startProvider(t)
	for name, open := range map[string]func(testing.TB) *sqldb.DB{"sqlite": sqldbtest.SQLite, "postgres": sqldbtest.Postgres} {
		t.Run(name, func(t *testing.T) {
			testSharedGroups(t, p, open(t))
		})
	}
}

func testSharedGroups(t *testing.T, p *provider, db *sqldb.DB) {
	b := setupOn(t, db, 1<<20, func(s *api.Server, b *bundle) {
		a, err := auth.NewAuthenticator(context.Background(), b.db, auth.OIDC{Issuer: p.Issuer(), Audience: p.ClientID,
			GroupsClaim: "groups", SharedGroups: []string{"finance", "legal"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Auth = a.Middleware
	})
	// person is a bearer token for sub, listing groups (any JSON value;
	// nil leaves the claim out).
	person := func(sub string, groups any) string {
		c := jwt.MapClaims{"iss": p.Issuer(), "sub": sub, "aud": p.ClientID,
			"iat": time.Now().Unix(), "exp": time.Now().Add(10 * time.Minute).Unix()}
		if groups != nil {
			c["groups"] = groups
		}
		tok, err := p.Keypair.SignJWT(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	upload := func(token, name string) string {
		body, ct := multipartBody(t, "file", name, []byte("Quarterly figures for "+name+"."))
		code, out := b.do(t, "POST", "/v1/documents", token, body, ct)
		var d struct{ ID string }
		if code != http.StatusAccepted || json.Unmarshal(out, &d) != nil {
			t.Fatalf("upload %s: %d %s", name, code, out)
		}
		return d.ID
	}
	lists := func(token, id string) bool {
		code, out := b.do(t, "GET", "/v1/documents", token, nil, "")
		if code != 200 {
			t.Fatalf("list: %d %s", code, out)
		}
		return strings.Contains(string(out), id)
	}

	alice := person("alice", []string{"finance", "sales"})
	bob := person("bob", []string{"finance"})
	carol := person("carol", []string{"legal"})
	dave := person("dave", nil)
	bobLeft := person("bob", []string{"sales"})
	bobOneString := person("bob", "finance")                                           // some providers send a single group as a string
	bobDirectory := person("bob", []string{"CN=Finance,OU=Groups,DC=corp", "finance"}) // a name that is no shared group is ignored

	report := upload(alice, "report.txt")
	private := upload(dave, "private.txt")
	salesOnly := upload(person("alice", []string{"sales"}), "sales.txt") // sales is not shared

	for _, tc := range []struct {
		who    string
		token  string
		id     string
		see    bool
		delete int
	}{
		{"a member of the uploader's shared group", bob, report, true, http.StatusForbidden},
		{"the same member, a single-string claim", bobOneString, report, true, http.StatusForbidden},
		{"the same member, with a directory name beside the group", bobDirectory, report, true, http.StatusForbidden},
		{"the same person once their token no longer lists the group", bobLeft, report, false, http.StatusNotFound},
		{"a member of another shared group", carol, report, false, http.StatusNotFound},
		{"a person with no groups", dave, report, false, http.StatusNotFound},
		{"a member, for a document uploaded without groups", alice, private, false, http.StatusNotFound},
		{"a member, for a document uploaded in an unshared group only", bob, salesOnly, false, http.StatusNotFound},
		{"an API token", b.token, report, false, http.StatusNotFound},
	} {
		t.Run(tc.who, func(t *testing.T) {
			if got := lists(tc.token, tc.id); got != tc.see {
				t.Errorf("list shows it: %v, want %v", got, tc.see)
			}
			wantGet, wantResult := http.StatusNotFound, http.StatusNotFound
			if tc.see {
				wantGet, wantResult = http.StatusOK, http.StatusConflict // visible, not processed yet
			}
			if code, out := b.do(t, "GET", "/v1/documents/"+tc.id, tc.token, nil, ""); code != wantGet {
				t.Errorf("get: %d %s, want %d", code, out, wantGet)
			}
			if code, out := b.do(t, "GET", "/v1/documents/"+tc.id+"/result", tc.token, nil, ""); code != wantResult {
				t.Errorf("result: %d %s, want %d", code, out, wantResult)
			}
			if code, out := b.do(t, "DELETE", "/v1/documents/"+tc.id, tc.token, nil, ""); code != tc.delete {
				t.Errorf("delete: %d %s, want %d", code, out, tc.delete)
			}
		})
	}
	if !lists(alice, report) || !lists(alice, salesOnly) {
		t.Fatal("the uploader lost sight of her documents")
	}

	// A groups claim that is not a list of names is refused, not read as none.
	for _, bad := range []any{42, map[string]any{"finance": true}, []any{"finance", 7}} {
		if code, out := b.do(t, "GET", "/v1/documents", person("bob", bad), nil, ""); code != http.StatusUnauthorized ||
			!strings.Contains(string(out), "groups claim") {
			t.Errorf("groups claim %v: %d %s, want 401 naming the claim", bad, code, out)
		}
	}

	// The uploader deletes; the group's members see nothing afterwards, and
	// the sharing goes with the document.
	if code, out := b.do(t, "DELETE", "/v1/documents/"+report, alice, nil, ""); code != http.StatusNoContent {
		t.Fatalf("uploader's delete: %d %s", code, out)
	}
	if code, _ := b.do(t, "GET", "/v1/documents/"+report, bob, nil, ""); code != http.StatusNotFound {
		t.Fatalf("after delete a member gets %d", code)
	}
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM document_groups WHERE document_id = $1`, report).Scan(&n); err != nil || n != 0 {
		t.Fatalf("sharing rows left after delete: %d %v", n, err)
	}
}
