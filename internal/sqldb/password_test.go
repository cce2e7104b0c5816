package sqldb_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

// secretStore stands in for the place a password lives (Secrets Manager in
// AWS): the rotation writes it, the connector reads it.
type secretStore struct {
	mu      sync.Mutex
	current string
	reads   int
	read    chan string // when set, is sent each value read, if it has room
}

func (s *secretStore) set(pw string) { s.mu.Lock(); s.current = pw; s.mu.Unlock() }

func (s *secretStore) password(_ context.Context, _ string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	select {
	case s.read <- s.current:
	default:
	}
	return s.current, nil
}

// openRotating opens the role's URL with the store as its password, and
// forces every query onto a new connection (no idle connections kept) so
// each one authenticates.
func openRotating(t *testing.T, rawURL string, store *secretStore) *sqldb.DB {
	t.Helper()
	db, err := sqldb.OpenWith(context.Background(), rawURL, sqldb.Options{Password: store.password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxIdleConns(0)
	return db
}

func ping(t *testing.T, db *sqldb.DB) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var one int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func TestRotatedPasswordIsReadAgain(t *testing.T) {
	t.Parallel()
	rawURL, setPassword := sqldbtest.PostgresRole(t, "first-pw")
	store := &secretStore{current: "first-pw"}
	db := openRotating(t, rawURL, store)
	if err := ping(t, db); err != nil {
		t.Fatalf("first connection: %v", err)
	}

	// The rotation: the server's password changes, then the secret.
	setPassword("second-pw")
	store.set("second-pw")
	if err := ping(t, db); err != nil {
		t.Fatalf("after rotation: %v", err)
	}

	// The window of a single-user rotation: the server already has the new
	// password, the secret catches up a moment later. The connector waits
	// for it instead of failing.
	read := make(chan string, 1)
	store.mu.Lock()
	store.read = read
	store.mu.Unlock()
	setPassword("third-pw")
	go func() {
		// Catch up only once the connector has read the old password, so
		// that at least one attempt is refused.
		for pw := range read {
			if pw == "second-pw" {
				store.set("third-pw")
				return
			}
		}
	}()
	if err := ping(t, db); err != nil {
		t.Fatalf("during the rotation window: %v", err)
	}
}

func TestWrongPasswordFailsAfterRetries(t *testing.T) {
	t.Parallel()
	rawURL, _ := sqldbtest.PostgresRole(t, "right-pw")
	store := &secretStore{current: "wrong-pw"}
	_, err := sqldb.OpenWith(context.Background(), rawURL, sqldb.Options{Password: store.password})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("err = %v, want PostgreSQL's invalid_password", err)
	}
	if store.reads < 2 {
		t.Fatalf("the password was read %d times; a refusal must make the connector look again", store.reads)
	}
}

// Without a password func the URL's own credentials are used, as before.
func TestPasswordFromURLStillWorks(t *testing.T) {
	t.Parallel()
	db := sqldbtest.Postgres(t)
	if err := ping(t, db); err != nil {
		t.Fatal(err)
	}
}
