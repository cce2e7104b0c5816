package sqldb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PasswordFunc returns the database password. refused is empty for the first
// connection; after PostgreSQL refused a password it is that password, and
// the func should look again (a rotation may have changed it) and return the
// one to try next, which may be the same if nothing newer is known yet.
type PasswordFunc func(ctx context.Context, refused string) (string, error)

// Options tune Open for production.
type Options struct {
	// Password, when set, supplies the PostgreSQL password for every new
	// connection instead of the URL, so a rotated password is picked up
	// without a restart.
	Password PasswordFunc
	// ConnMaxLifetime closes a PostgreSQL connection after this long, so
	// every connection re-authenticates at least that often (0: never).
	ConnMaxLifetime time.Duration
}

// authRetries is how many times a refused password is looked up again
// before the connection fails; authBackoff is the wait before each retry
// where the lookup found nothing new (the rotation has changed the server
// but not yet the secret).
const authRetries = 4

var authBackoff = []time.Duration{0, 500 * time.Millisecond, time.Second, 2 * time.Second}

// rotatingConnector opens pgx connections with the password of the moment.
type rotatingConnector struct {
	base     *pgx.ConnConfig
	password PasswordFunc

	mu   sync.Mutex
	last string // the password that last connected
}

func (c *rotatingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c.mu.Lock()
	pw := c.last
	c.mu.Unlock()
	if pw == "" {
		var err error
		if pw, err = c.password(ctx, ""); err != nil {
			return nil, fmt.Errorf("sqldb: read the database password: %w", err)
		}
	}
	conn, err := c.connect(ctx, pw)
	for attempt := 0; attempt < authRetries && isAuthFailure(err); attempt++ {
		next, perr := c.password(ctx, pw)
		if perr != nil {
			return nil, fmt.Errorf("sqldb: the database refused the password, and reading it again failed: %w", perr)
		}
		if next == pw {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(authBackoff[attempt]):
			}
		}
		pw = next
		conn, err = c.connect(ctx, pw)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.last = pw
	c.mu.Unlock()
	return conn, nil
}

func (c *rotatingConnector) connect(ctx context.Context, password string) (driver.Conn, error) {
	cfg := c.base.Copy()
	cfg.Password = password
	return stdlib.GetConnector(*cfg).Connect(ctx)
}

func (c *rotatingConnector) Driver() driver.Driver { return stdlib.GetDefaultDriver() }

// isAuthFailure reports whether PostgreSQL refused the credentials
// (SQLSTATE class 28: invalid authorization).
func isAuthFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}
