package planestore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// StaffMember is a person of the vendor's staff the plane knows: who the
// identity provider says they are (issuer and subject) and their role.
type StaffMember struct {
	ID          string     `json:"id"`
	Issuer      string     `json:"issuer"`
	Subject     string     `json:"subject"`
	Name        string     `json:"name"`
	Role        Role       `json:"role"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at,omitempty"`
}

// principal is the member as the admin API and dashboard see them.
func (m StaffMember) principal() Principal {
	return Principal{Kind: KindStaff, ID: m.ID, Name: m.Name, Role: m.Role}
}

// ParseRole returns the role named s, or an error naming the roles.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles() {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q is not one of viewer, support, release-manager, administrator", s)
}

// CheckText accepts 1..max bytes of printable UTF-8 on one line.
func CheckText(what, v string, max int) error {
	if v == "" || len(v) > max {
		return fmt.Errorf("%s must be 1-%d bytes", what, max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s must be printable text on one line (no control characters)", what)
		}
	}
	return nil
}

// StaffInput is POST /v1/admin/staff.
type StaffInput struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	Name    string `json:"name"`
	Role    Role   `json:"role"`
}

// Validate checks a staff member as an administrator entered them.
func (in StaffInput) Validate() error {
	u, err := url.Parse(in.Issuer)
	if err != nil || len(in.Issuer) > 512 || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("issuer must be the identity provider's issuer URL, such as https://login.example.com, as its discovery document names it")
	}
	if err := CheckText("subject", in.Subject, 255); err != nil {
		return fmt.Errorf("%w (the sub claim; the refusal page shows it to the person signing in)", err)
	}
	if err := CheckText("name", in.Name, 200); err != nil {
		return err
	}
	if _, err := ParseRole(string(in.Role)); err != nil {
		return err
	}
	return nil
}

const staffColumns = `id, issuer, subject, name, role, created_at, last_login_at`

func scanStaff(sc interface{ Scan(...any) error }) (StaffMember, error) {
	var m StaffMember
	var role string
	var created int64
	var last sql.NullInt64
	if err := sc.Scan(&m.ID, &m.Issuer, &m.Subject, &m.Name, &role, &created, &last); err != nil {
		return StaffMember{}, err
	}
	m.Role, m.CreatedAt, m.LastLoginAt = Role(role), fromMS(created), fromNullMS(last)
	return m, nil
}

// AddStaff adds a staff member; by is who did it, recorded in the audit log
// in the same transaction.
func (s *Store) AddStaff(ctx context.Context, in StaffInput, by Principal) (StaffMember, error) {
	if err := in.Validate(); err != nil {
		return StaffMember{}, err
	}
	m := StaffMember{ID: NewID("st_"), Issuer: in.Issuer, Subject: in.Subject, Name: in.Name, Role: in.Role,
		CreatedAt: fromMS(ms(s.now()))}
	e := AuditEntry{Action: "staff.add", Target: m.ID, Reason: m.Name + " as " + string(m.Role)}
	err := s.audited(ctx, by, e, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM plane_staff WHERE issuer = $1 AND subject = $2`,
			m.Issuer, m.Subject).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO plane_staff (id, issuer, subject, name, role, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, m.ID, m.Issuer, m.Subject, m.Name, string(m.Role), ms(m.CreatedAt))
		return err
	})
	if err != nil {
		return StaffMember{}, fmt.Errorf("plane: add staff: %w", err)
	}
	return m, nil
}

// Staff lists the staff members by name.
func (s *Store) Staff(ctx context.Context) ([]StaffMember, error) {
	out, err := queryList(ctx, s, scanStaff, `SELECT `+staffColumns+` FROM plane_staff ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("plane: list staff: %w", err)
	}
	return out, nil
}

// queryList runs q and scans every row with scan; no rows is an empty list.
func queryList[T any](ctx context.Context, s *Store, scan func(interface{ Scan(...any) error }) (T, error), q string, args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Administrators counts the staff members with the administrator role: a
// plane without its admin token needs one to manage staff and tokens.
func (s *Store) Administrators(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM plane_staff WHERE role = $1`, string(RoleAdmin)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("plane: count administrators: %w", err)
	}
	return n, nil
}

// StaffByID returns one staff member.
func (s *Store) StaffByID(ctx context.Context, id string) (StaffMember, error) {
	m, err := scanStaff(s.db.QueryRowContext(ctx, `SELECT `+staffColumns+` FROM plane_staff WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return StaffMember{}, ErrNotFound
	}
	return m, err
}

// StaffBySubject returns the staff member the identity provider's issuer
// and subject name.
func (s *Store) StaffBySubject(ctx context.Context, issuer, subject string) (StaffMember, error) {
	m, err := scanStaff(s.db.QueryRowContext(ctx, `SELECT `+staffColumns+` FROM plane_staff WHERE issuer = $1 AND subject = $2`,
		issuer, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return StaffMember{}, ErrNotFound
	}
	return m, err
}

// SetStaffRole changes a member's role; their open sessions get the new role
// at their next request.
func (s *Store) SetStaffRole(ctx context.Context, id string, role Role, by Principal) (StaffMember, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return StaffMember{}, err
	}
	e := AuditEntry{Action: "staff.set-role", Target: id, Reason: "role " + string(role)}
	err := s.audited(ctx, by, e, func(tx *sql.Tx) error {
		if role != RoleAdmin {
			if err := keepAnAdministrator(ctx, tx, id); err != nil {
				return err
			}
		}
		return mustChange(tx.ExecContext(ctx, `UPDATE plane_staff SET role = $1 WHERE id = $2`, string(role), id))
	})
	if err != nil {
		return StaffMember{}, fmt.Errorf("plane: set role of %s: %w", id, err)
	}
	return s.StaffByID(ctx, id)
}

// RemoveStaff removes a member and ends their dashboard sessions.
func (s *Store) RemoveStaff(ctx context.Context, id string, by Principal) error {
	err := s.audited(ctx, by, AuditEntry{Action: "staff.remove", Target: id}, func(tx *sql.Tx) error {
		if err := keepAnAdministrator(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM plane_sessions WHERE staff_id = $1`, id); err != nil {
			return err
		}
		return mustChange(tx.ExecContext(ctx, `DELETE FROM plane_staff WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("plane: remove staff %s: %w", id, err)
	}
	return nil
}

// ErrLastAdministrator refuses to remove or demote the one administrator:
// without one nobody could manage staff or tokens again, and a plane run
// with --no-admin-token would refuse to start.
var ErrLastAdministrator = errors.New("the only administrator cannot be removed or lose the role; give another staff member the administrator role first")

// keepAnAdministrator refuses a change to id that would leave no
// administrator, if id is one now.
func keepAnAdministrator(ctx context.Context, tx *sql.Tx, id string) error {
	var isAdmin, others int
	err := tx.QueryRowContext(ctx, `SELECT
		COUNT(CASE WHEN id = $1 THEN 1 END), COUNT(CASE WHEN id <> $1 THEN 1 END)
		FROM plane_staff WHERE role = $2`, id, string(RoleAdmin)).Scan(&isAdmin, &others)
	if err != nil {
		return err
	}
	if isAdmin > 0 && others == 0 {
		return ErrLastAdministrator
	}
	return nil
}

// mustChange turns an UPDATE or DELETE that touched no row into ErrNotFound.
func mustChange(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Token is an automation token as the plane lists it; its secret is shown
// once, when it is created, and kept only as a hash.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// TokenPrefix starts every automation token, so secret scanners and people
// can tell one from the admin token.
const TokenPrefix = "tpt_"

// tokenSecretLen is the base64url length of a token's 32 random bytes.
const tokenSecretLen = 43

// ParseToken checks that s has the form of an automation token: the prefix
// and 43 base64url characters.
func ParseToken(s string) error {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok || len(rest) != tokenSecretLen {
		return fmt.Errorf("an automation token is %s followed by %d characters; this is not one", TokenPrefix, tokenSecretLen)
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(rest); err != nil {
		return fmt.Errorf("an automation token is %s followed by %d base64url characters; this is not one", TokenPrefix, tokenSecretLen)
	}
	return nil
}

func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// TokenInput is POST /v1/admin/tokens.
type TokenInput struct {
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Validate checks a token request against the plane's clock.
func (in TokenInput) Validate(now time.Time) error {
	if in.Name == "" || len(in.Name) > 100 || strings.Trim(in.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return errors.New("name must be 1-100 characters of A-Z a-z 0-9 . _ - (say what the token is for, e.g. release-ci)")
	}
	if _, err := ParseRole(string(in.Role)); err != nil {
		return err
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		return fmt.Errorf("expires_at %s is not in the future", in.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

const tokenColumns = `id, name, role, created_at, created_by, expires_at, revoked_at, last_used_at`

func scanToken(sc interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var role string
	var created int64
	var exp, rev, used sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Name, &role, &created, &t.CreatedBy, &exp, &rev, &used); err != nil {
		return Token{}, err
	}
	t.Role, t.CreatedAt = Role(role), fromMS(created)
	t.ExpiresAt, t.RevokedAt, t.LastUsedAt = fromNullMS(exp), fromNullMS(rev), fromNullMS(used)
	return t, nil
}

// CreateToken makes an automation token and returns it with its secret,
// which the plane cannot show again.
func (s *Store) CreateToken(ctx context.Context, in TokenInput, by Principal) (Token, string, error) {
	now := s.now()
	if err := in.Validate(now); err != nil {
		return Token{}, "", err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Token{}, "", fmt.Errorf("plane: create token: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	t := Token{ID: NewID("tk_"), Name: in.Name, Role: in.Role, CreatedAt: fromMS(ms(now)), CreatedBy: by.Name}
	var exp sql.NullInt64
	if in.ExpiresAt != nil {
		e := fromMS(ms(*in.ExpiresAt))
		t.ExpiresAt, exp = &e, sql.NullInt64{Int64: ms(e), Valid: true}
	}
	e := AuditEntry{Action: "token.create", Target: t.ID, Reason: t.Name + " as " + string(t.Role)}
	err := s.audited(ctx, by, e, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO plane_tokens (id, name, role, secret_hash, created_at, created_by, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.ID, t.Name, string(t.Role), hashToken(secret), ms(t.CreatedAt), t.CreatedBy, exp)
		return err
	})
	if err != nil {
		return Token{}, "", fmt.Errorf("plane: create token: %w", err)
	}
	return t, secret, nil
}

// Tokens lists every automation token, newest first, revoked ones included.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	out, err := queryList(ctx, s, scanToken, `SELECT `+tokenColumns+` FROM plane_tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("plane: list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken ends a token: from now on it is refused.
func (s *Store) RevokeToken(ctx context.Context, id string, by Principal) (Token, error) {
	err := s.audited(ctx, by, AuditEntry{Action: "token.revoke", Target: id}, func(tx *sql.Tx) error {
		return mustChange(tx.ExecContext(ctx, `UPDATE plane_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`,
			ms(s.now()), id))
	})
	if err != nil {
		return Token{}, fmt.Errorf("plane: revoke token %s: %w", id, err)
	}
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM plane_tokens WHERE id = $1`, id))
	if err != nil {
		return Token{}, fmt.Errorf("plane: revoke token %s: %w", id, err)
	}
	return t, nil
}

// lastUsedEvery bounds how often a token's last use is written: once a
// minute is enough to see whether a token is still in use.
const lastUsedEvery = time.Minute

// TokenPrincipal returns the principal of a live automation token; ok is
// false for a secret that is malformed, unknown, revoked or expired. The
// lookup is by hash, so its timing says nothing about the secret.
func (s *Store) TokenPrincipal(ctx context.Context, secret string) (p Principal, ok bool, err error) {
	if ParseToken(secret) != nil {
		return Principal{}, false, nil
	}
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM plane_tokens WHERE secret_hash = $1`, hashToken(secret)))
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, fmt.Errorf("plane: check token: %w", err)
	}
	now := s.now()
	if t.RevokedAt != nil || (t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)) {
		return Principal{}, false, nil
	}
	// The row just read says whether a write is due; the WHERE clause keeps
	// replicas that both find it due from writing twice.
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= lastUsedEvery {
		if _, err := s.db.ExecContext(ctx, `UPDATE plane_tokens SET last_used_at = $1
			WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)`, ms(now), t.ID, ms(now.Add(-lastUsedEvery))); err != nil {
			return Principal{}, false, fmt.Errorf("plane: check token: %w", err)
		}
	}
	return Principal{Kind: KindToken, ID: t.ID, Name: t.Name, Role: t.Role}, true, nil
}

// staffLogin records a member's sign-in (last login time and the audit log)
// and starts a dashboard session for them, in one transaction.
func (s *Store) staffLogin(ctx context.Context, m StaffMember, sessionHash string, expires time.Time) error {
	now := s.now()
	return s.audited(ctx, m.principal(), AuditEntry{Action: "staff.login", Target: m.ID}, func(tx *sql.Tx) error {
		if err := mustChange(tx.ExecContext(ctx, `UPDATE plane_staff SET last_login_at = $1 WHERE id = $2`, ms(now), m.ID)); err != nil {
			return err
		}
		return insertSession(ctx, tx, sessionHash, expires, m.ID, now)
	})
}
