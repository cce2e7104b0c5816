// Package sqldb opens the document service's database, SQLite on the embedded
// default and PostgreSQL in production, and applies its versioned migrations.
//
// The two dialects share one schema and one set of SQL statements: times are
// stored as Unix milliseconds (BIGINT), booleans as INTEGER, and placeholders
// are written $1, $2, … which both drivers accept. Where the dialects really
// differ, the caller asks DB.Dialect: row locking for queue receives
// (internal/queue), and the plane's heartbeat writes, which lock installs in
// ID order and commit without waiting for the WAL flush on PostgreSQL
// (internal/plane/planestore); migrations tell goose which dialect it writes for.
package sqldb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a database handle that knows its dialect.
type DB struct {
	*sql.DB
	Dialect Dialect
}

//go:embed migrations/*.sql
var migrations embed.FS

// testMigrations is nil in every release build; the upgradetest_v2 build
// tag (the upgrade tests' second release) sets it to add one migration.
var testMigrations fs.FS

// docsvcMigrations is the document service's migrations.
func docsvcMigrations() (fs.FS, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil || testMigrations == nil {
		return sub, err
	}
	return overlay(sub, testMigrations)
}

// Open connects to rawURL: "sqlite:///abs/path/db.sqlite", "sqlite://rel/path",
// or "postgres://user@host:port/db?...". It does not migrate; call Migrate.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	return OpenWith(ctx, rawURL, Options{})
}

// OpenWith is Open with production options for PostgreSQL; SQLite ignores
// them.
func OpenWith(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, password included: say only what
		// kind of problem it is.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("sqldb: the database URL does not parse (%v); check its escaping", err)
	}
	var db *DB
	switch u.Scheme {
	case "sqlite":
		path := u.Host + u.Path
		if path == "" {
			return nil, fmt.Errorf("sqldb: database URL %q has no file path (want sqlite:///path/to/db.sqlite)", redact(rawURL))
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("sqldb: create database directory: %w", err)
			}
		}
		// WAL lets readers proceed while the worker writes; busy_timeout makes
		// the api and worker processes wait for each other instead of failing;
		// synchronous(FULL) is what makes a row durable across a power cut.
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
			"&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)&_txlock=immediate"
		sdb, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("sqldb: open sqlite: %w", err)
		}
		db = &DB{DB: sdb, Dialect: SQLite}
	case "postgres", "postgresql":
		var sdb *sql.DB
		if opts.Password != nil {
			base, err := pgx.ParseConfig(rawURL)
			if err != nil {
				return nil, fmt.Errorf("sqldb: parse %s: %w", redact(rawURL), err)
			}
			sdb = sql.OpenDB(&rotatingConnector{base: base, password: opts.Password})
		} else if sdb, err = sql.Open("pgx", rawURL); err != nil {
			return nil, fmt.Errorf("sqldb: open postgres: %w", err)
		}
		sdb.SetConnMaxLifetime(opts.ConnMaxLifetime)
		sdb.SetMaxOpenConns(16)
		// Keep as many idle as open: with the default of 2 nearly every query
		// re-dialled (and re-did TLS) under load.
		sdb.SetMaxIdleConns(16)
		db = &DB{DB: sdb, Dialect: Postgres}
	default:
		return nil, fmt.Errorf("sqldb: unsupported database URL scheme %q (want sqlite:// or postgres://)", u.Scheme)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqldb: connect to %s: %w", redact(rawURL), err)
	}
	return db, nil
}

// Migrate applies every document-service migration not yet applied.
// Migrations only ever add (expand/contract), so the previous release keeps
// working on the new schema.
func (db *DB) Migrate(ctx context.Context) (applied int, err error) {
	sub, err := docsvcMigrations()
	if err != nil {
		return 0, err
	}
	return db.MigrateFS(ctx, sub, "goose_db_version")
}

// MigrateFS applies the goose migrations in fsys (*.sql at its root),
// recording versions in versionTable. Other services with their own schema
// (the vendor plane) use it with their own migrations.
func (db *DB) MigrateFS(ctx context.Context, fsys fs.FS, versionTable string) (applied int, err error) {
	p, err := db.provider(fsys, versionTable)
	if err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("sqldb: migrate: %w", err)
	}
	return len(res), nil
}

// SchemaVersion reports the applied schema version and the newest version
// this binary knows.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int64, err error) {
	sub, err := docsvcMigrations()
	if err != nil {
		return 0, 0, err
	}
	p, err := db.provider(sub, "goose_db_version")
	if err != nil {
		return 0, 0, err
	}
	current, err = p.GetDBVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("sqldb: schema version: %w", err)
	}
	srcs := p.ListSources()
	if len(srcs) > 0 {
		latest = srcs[len(srcs)-1].Version
	}
	return current, latest, nil
}

func (db *DB) provider(fsys fs.FS, versionTable string) (*goose.Provider, error) {
	d := goose.DialectPostgres
	if db.Dialect == SQLite {
		d = goose.DialectSQLite3
	}
	store, err := database.NewStore(d, versionTable)
	if err != nil {
		return nil, fmt.Errorf("sqldb: migrations: %w", err)
	}
	p, err := goose.NewProvider("", db.DB, fsys, goose.WithStore(store))
	if err != nil {
		return nil, fmt.Errorf("sqldb: migrations: %w", err)
	}
	return p, nil
}

// InTx runs fn in a transaction, committing when fn returns nil.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldb: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldb: commit: %w", err)
	}
	return nil
}

// redact drops the password from a database URL so it can be shown.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return strings.Replace(u.String(), "REDACTED", "***", 1)
}

// Redact returns rawURL with any password replaced, for logs and config output.
func Redact(rawURL string) string { return redact(rawURL) }
