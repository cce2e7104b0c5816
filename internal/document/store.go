package document

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tetherhq/tether/internal/sqldb"
)

// Store is the durable record of documents and results. The same SQL runs on
// SQLite and PostgreSQL.
type Store struct {
	db  *sqldb.DB
	now func() time.Time
}

// NewStore returns a Store on db; now is the clock.
func NewStore(db *sqldb.DB, now func() time.Time) *Store {
	return &Store{db: db, now: now}
}

// The free text of a document record is cut when it is read, in the query
// itself, so every record in every answer (a list page holds up to
// MaxListLimit) has a size bound whatever its row holds: rows written before
// filenames were limited can hold megabytes. Each column is read one
// character past its limit, so clip can tell a cut value and mark it.
const (
	maxShownMediaType = 255
	maxShownError     = 1024
	docColumns        = `id, status, substr(filename, 1, 256), substr(media_type, 1, 256), size_bytes, blob_key, owner,
		substr(error, 1, 1025), attempts, created_at, updated_at`
)

// MaxListLimit is the largest page List returns.
const MaxListLimit = 500

func scanDoc(row interface{ Scan(...any) error }) (Document, error) {
	var d Document
	var created, updated int64
	err := row.Scan(&d.ID, &d.Status, &d.Filename, &d.MediaType, &d.Size, &d.blobKey, &d.owner, &d.Error, &d.Attempts, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Document{}, ErrNotFound
	}
	if err != nil {
		return Document{}, err
	}
	d.Filename = clip(d.Filename, MaxFilenameBytes)
	d.MediaType = clip(d.MediaType, maxShownMediaType)
	d.Error = clip(d.Error, maxShownError)
	d.CreatedAt, d.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return d, nil
}

// clip cuts s to at most max bytes on a character boundary, ending a cut
// value with "…".
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const more = "…"
	cut := max - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// Create records a new, queued document whose bytes are already stored.
func (s *Store) Create(ctx context.Context, d Document) error {
	now := s.now().UnixMilli()
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO documents
			(id, status, filename, media_type, size_bytes, blob_key, owner, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
			d.ID, Queued, d.Filename, d.MediaType, d.Size, d.blobKey, d.owner, now); err != nil {
			return err
		}
		for _, g := range d.groups {
			if _, err := tx.ExecContext(ctx, `INSERT INTO document_groups (document_id, grp) VALUES ($1, $2)
				ON CONFLICT DO NOTHING`, d.ID, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("document: create %s: %w", d.ID, err)
	}
	return nil
}

// Get returns the document with id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Document, error) {
	d, err := scanDoc(s.db.QueryRowContext(ctx, `SELECT `+docColumns+` FROM documents WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Document{}, fmt.Errorf("document: get %s: %w", id, err)
	}
	return d, err
}

// Owned returns the document with id if owner uploaded it, and
// ErrNotFound otherwise: another owner's document is indistinguishable from
// a missing one.
func (s *Store) Owned(ctx context.Context, owner, id string) (Document, error) {
	return s.Visible(ctx, Viewer{Owner: owner}, id)
}

// Visible returns the document with id if v uploaded it or it was shared
// with one of v's groups, and ErrNotFound otherwise, exactly as for a
// missing one.
func (s *Store) Visible(ctx context.Context, v Viewer, id string) (Document, error) {
	d, err := s.Get(ctx, id)
	if err != nil || d.owner == v.Owner {
		return d, err
	}
	if len(v.Groups) > 0 {
		in, args := groupsIn(v.Groups, 2)
		var n int
		err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM document_groups WHERE document_id = $1 AND grp IN (`+in+`)`,
			append([]any{id}, args...)...).Scan(&n)
		if err != nil {
			return Document{}, fmt.Errorf("document: get %s: %w", id, err)
		}
		if n > 0 {
			return d, nil
		}
	}
	return Document{}, ErrNotFound
}

// groupsIn is the placeholders $first, $first+1, … for groups, and groups
// as arguments.
func groupsIn(groups []string, first int) (string, []any) {
	ph := make([]string, len(groups))
	args := make([]any, len(groups))
	for i, g := range groups {
		ph[i] = "$" + strconv.Itoa(first+i)
		args[i] = g
	}
	return strings.Join(ph, ", "), args
}

// List returns up to limit (at most MaxListLimit) of owner's documents,
// newest first, starting after cursor (empty for the first page). next is
// empty on the last page.
func (s *Store) List(ctx context.Context, owner string, limit int, cursor string) (docs []Document, next string, err error) {
	return s.ListVisible(ctx, Viewer{Owner: owner}, limit, cursor)
}

// ListVisible is List of every document Visible to v.
func (s *Store) ListVisible(ctx context.Context, v Viewer, limit int, cursor string) (docs []Document, next string, err error) {
	limit = min(max(limit, 1), MaxListLimit)
	q := `SELECT ` + docColumns + ` FROM documents WHERE `
	args := []any{v.Owner}
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q += `((created_at < $2) OR (created_at = $2 AND id < $3)) AND `
		args = append(args, at, id)
	}
	if len(v.Groups) == 0 {
		q += `owner = $1`
	} else {
		in, gargs := groupsIn(v.Groups, len(args)+1)
		q += `(owner = $1 OR id IN (SELECT document_id FROM document_groups WHERE grp IN (` + in + `)))`
		args = append(args, gargs...)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("document: list: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDoc(rows)
		if err != nil {
			return nil, "", fmt.Errorf("document: list: %w", err)
		}
		docs = append(docs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("document: list: %w", err)
	}
	if len(docs) > limit {
		docs = docs[:limit]
		last := docs[limit-1]
		next = encodeCursor(last.CreatedAt.UnixMilli(), last.ID)
	}
	return docs, next, nil
}

// ErrBadCursor means a list cursor was not one this service handed out.
var ErrBadCursor = errors.New("document: invalid cursor")

func encodeCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + ":" + id))
}

func decodeCursor(c string) (int64, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", ErrBadCursor
	}
	at, id, ok := strings.Cut(string(raw), ":")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || !ValidID(id) {
		return 0, "", ErrBadCursor
	}
	return n, id, nil
}

// MarkEnqueued records that the document's job message was sent.
func (s *Store) MarkEnqueued(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE documents SET enqueued = 1 WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("document: mark enqueued %s: %w", id, err)
	}
	return nil
}

// Unenqueued lists queued documents older than age whose job message was
// never sent (the api stopped between storing the row and sending), so the
// worker can send it: the outbox half of at-least-once.
func (s *Store) Unenqueued(ctx context.Context, age time.Duration, max int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT id FROM documents
		WHERE status = $1 AND enqueued = 0 AND created_at < $2 ORDER BY created_at LIMIT %d`, max),
		Queued, s.now().Add(-age).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("document: unenqueued: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("document: unenqueued: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Start moves a document to processing and counts the attempt. A document
// that already reached a terminal state is returned unchanged, so a
// redelivered job does no work twice.
func (s *Store) Start(ctx context.Context, id string) (Document, error) {
	_, err := s.db.ExecContext(ctx, `UPDATE documents SET status = $1, attempts = attempts + 1, updated_at = $2
		WHERE id = $3 AND status IN ($4, $1)`, Processing, s.now().UnixMilli(), id, Queued)
	if err != nil {
		return Document{}, fmt.Errorf("document: start %s: %w", id, err)
	}
	return s.Get(ctx, id)
}

// Succeed stores the result and marks the document succeeded, atomically.
// Storing the same result twice (a redelivered job) is harmless.
func (s *Store) Succeed(ctx context.Context, r Result) error {
	kw, err := json.Marshal(r.Keywords)
	if err != nil {
		return fmt.Errorf("document: succeed %s: %w", r.DocumentID, err)
	}
	now := s.now().UnixMilli()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE documents SET status = $1, error = '', updated_at = $2
			WHERE id = $3 AND status <> $4`, Succeeded, now, r.DocumentID, Failed)
		if err != nil {
			return fmt.Errorf("document: succeed %s: %w", r.DocumentID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("document: succeed %s: %w", r.DocumentID, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO results (document_id, text, summary, keywords, pages, provider, model, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (document_id) DO UPDATE SET text = excluded.text, summary = excluded.summary,
				keywords = excluded.keywords, pages = excluded.pages, provider = excluded.provider,
				model = excluded.model, created_at = excluded.created_at`,
			r.DocumentID, r.Text, r.Summary, string(kw), r.Pages, r.Provider, r.Model, now)
		if err != nil {
			return fmt.Errorf("document: store result %s: %w", r.DocumentID, err)
		}
		return nil
	})
}

// Fail marks a document failed with a reason shown to its readers. The
// reason must not quote document content.
func (s *Store) Fail(ctx context.Context, id, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE documents SET status = $1, error = $2, updated_at = $3
		WHERE id = $4 AND status <> $5`, Failed, reason, s.now().UnixMilli(), id, Succeeded)
	if err != nil {
		return fmt.Errorf("document: fail %s: %w", id, err)
	}
	return nil
}

// Requeue puts a processing document back to queued (its job is waiting,
// for example for the AI provider to come back).
func (s *Store) Requeue(ctx context.Context, id, note string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE documents SET status = $1, error = $2, updated_at = $3
		WHERE id = $4 AND status = $5`, Queued, note, s.now().UnixMilli(), id, Processing)
	if err != nil {
		return fmt.Errorf("document: requeue %s: %w", id, err)
	}
	return nil
}

// Retry puts a document whose job was dead-lettered back to queued with
// no attempts counted, so that the redriven job processes it again: the
// worker drops a job whose document already failed, and Abandoned judges a
// job by its attempts. A succeeded document is left alone. It reports
// whether the document changed.
func (s *Store) Retry(ctx context.Context, id string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE documents SET status = $1, attempts = 0, error = '', updated_at = $2
		WHERE id = $3 AND status IN ($4, $5)`, Queued, s.now().UnixMilli(), id, Failed, Processing)
	if err != nil {
		return false, fmt.Errorf("document: retry %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("document: retry %s: %w", id, err)
	}
	return n > 0, nil
}

// Resume moves a document that Requeue parked back to processing. Unlike
// Start it counts no attempt: the same delivery goes on, and attempts must
// keep matching deliveries for Abandoned to judge a job by them.
func (s *Store) Resume(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE documents SET status = $1, error = '', updated_at = $2
		WHERE id = $3 AND status = $4`, Processing, s.now().UnixMilli(), id, Queued)
	if err != nil {
		return fmt.Errorf("document: resume %s: %w", id, err)
	}
	return nil
}

// Result returns the result of owner's finished document.
func (s *Store) Result(ctx context.Context, owner, id string) (Result, error) {
	return s.VisibleResult(ctx, Viewer{Owner: owner}, id)
}

// VisibleResult is Result of a document Visible to v.
func (s *Store) VisibleResult(ctx context.Context, v Viewer, id string) (Result, error) {
	d, err := s.Visible(ctx, v, id)
	if err != nil {
		return Result{}, err
	}
	switch {
	case d.Status == Failed:
		return Result{}, ErrNoResult
	case !d.Status.Terminal():
		return Result{}, ErrNotFinished
	}
	var r Result
	var kw string
	var created int64
	err = s.db.QueryRowContext(ctx, `SELECT document_id, text, summary, keywords, pages, provider, model, created_at
		FROM results WHERE document_id = $1`, id).
		Scan(&r.DocumentID, &r.Text, &r.Summary, &kw, &r.Pages, &r.Provider, &r.Model, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Result{}, ErrNoResult
	}
	if err != nil {
		return Result{}, fmt.Errorf("document: result %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(kw), &r.Keywords); err != nil {
		return Result{}, fmt.Errorf("document: result %s: keywords: %w", id, err)
	}
	r.CreatedAt = time.UnixMilli(created).UTC()
	return r, nil
}

// Delete removes one of owner's documents' rows (its result goes with it).
func (s *Store) Delete(ctx context.Context, owner, id string) (Document, error) {
	var d Document
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanDoc(tx.QueryRowContext(ctx, `SELECT `+docColumns+` FROM documents WHERE id = $1`, id))
		if err != nil {
			return err
		}
		if d.owner != owner {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM results WHERE document_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM document_groups WHERE document_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM documents WHERE id = $1`, id)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Document{}, fmt.Errorf("document: delete %s: %w", id, err)
	}
	return d, err
}

// Counts returns the number of documents in each status, for metrics and
// the agent's coarse totals.
func (s *Store) Counts(ctx context.Context) (map[Status]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM documents GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("document: counts: %w", err)
	}
	defer rows.Close()
	out := map[Status]int64{}
	for rows.Next() {
		var st Status
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("document: counts: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

// SetHealth records a component's health for other processes to read.
func (s *Store) SetHealth(ctx context.Context, component, status, detail string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO component_health (component, status, detail, updated_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (component) DO UPDATE SET status = excluded.status, detail = excluded.detail, updated_at = excluded.updated_at`,
		component, status, detail, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("document: set health %s: %w", component, err)
	}
	return nil
}

// Health is a component's last reported state.
type Health struct {
	Component string    `json:"component"`
	Status    string    `json:"status"`
	Detail    string    `json:"detail,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Healths returns every component's last reported state.
func (s *Store) Healths(ctx context.Context) ([]Health, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT component, status, detail, updated_at FROM component_health ORDER BY component`)
	if err != nil {
		return nil, fmt.Errorf("document: healths: %w", err)
	}
	defer rows.Close()
	var out []Health
	for rows.Next() {
		var h Health
		var at int64
		if err := rows.Scan(&h.Component, &h.Status, &h.Detail, &at); err != nil {
			return nil, fmt.Errorf("document: healths: %w", err)
		}
		h.UpdatedAt = time.UnixMilli(at).UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// Totals counts all documents and their stored bytes, for coarse storage
// figures in metrics.
func (s *Store) Totals(ctx context.Context) (documents, bytes int64, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM documents`).Scan(&documents, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("document: totals: %w", err)
	}
	return documents, bytes, nil
}

// Touch records that a processing document is still being worked on, so
// Abandoned can tell a long job from one whose worker died.
func (s *Store) Touch(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE documents SET updated_at = $1 WHERE id = $2 AND status = $3`,
		s.now().UnixMilli(), id, Processing)
	if err != nil {
		return fmt.Errorf("document: touch %s: %w", id, err)
	}
	return nil
}

// Abandoned lists documents still processing after their last allowed
// delivery whose worker stopped touching them more than idle ago: the worker
// died on the job's final attempt, so its message went to the dead-letter
// queue and no one will finish it.
func (s *Store) Abandoned(ctx context.Context, maxAttempts int, idle time.Duration, max int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT id FROM documents
		WHERE status = $1 AND attempts >= $2 AND updated_at < $3 ORDER BY updated_at LIMIT %d`, max),
		Processing, maxAttempts, s.now().Add(-idle).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("document: abandoned: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("document: abandoned: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Pages sums the pages of every stored result, for the usage figures the
// agent may report (as a daily total, only if the customer opts in).
func (s *Store) Pages(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(pages), 0) FROM results`).Scan(&n); err != nil {
		return 0, fmt.Errorf("document: pages: %w", err)
	}
	return n, nil
}
