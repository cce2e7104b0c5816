package planestore

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// RememberNonce records nonce for installID until the given time. It reports
// false when the nonce is already recorded and unexpired: a replay.
// Concurrent calls share one INSERT (see batcher); each commits before it
// returns, so a restart cannot forget a nonce it accepted.
func (s *Store) RememberNonce(ctx context.Context, installID, nonce string, until time.Time) (fresh bool, err error) {
	fresh, err = s.nonces.do(ctx, nonceItem{installID: installID, nonce: nonce, until: until})
	if err != nil {
		return false, fmt.Errorf("plane: remember nonce: %w", err)
	}
	return fresh, nil
}

type nonceItem struct {
	installID, nonce string
	until            time.Time
}

func (s *Store) rememberNonces(ctx context.Context, items []nonceItem) ([]bool, error) {
	fresh := make([]bool, len(items))
	type key struct{ install, nonce string }
	first := make(map[key]int, len(items))
	var sb strings.Builder
	args := []any{ms(s.now())}
	sb.WriteString(`INSERT INTO plane_nonces (install_id, nonce, expires_at) VALUES `)
	for i, it := range items {
		k := key{it.installID, it.nonce}
		if _, dup := first[k]; dup {
			continue // the same nonce twice in one batch: the later one is a replay
		}
		first[k] = i
		if len(args) > 1 {
			sb.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&sb, "($%d, $%d, $%d)", n+1, n+2, n+3)
		args = append(args, it.installID, it.nonce, ms(it.until))
	}
	// An expired row may be reused; the WHERE on the update keeps live
	// ones, and RETURNING names exactly the rows written: the fresh nonces.
	sb.WriteString(` ON CONFLICT (install_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
		WHERE plane_nonces.expires_at < $1 RETURNING install_id, nonce`)
	rows, err := s.db.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.install, &k.nonce); err != nil {
			return nil, err
		}
		if i, ok := first[k]; ok {
			fresh[i] = true
		}
	}
	return fresh, rows.Err()
}

// PruneNonces deletes nonces that expired before now; it returns how many.
func (s *Store) PruneNonces(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM plane_nonces WHERE expires_at < $1`, ms(s.now()))
	if err != nil {
		return 0, fmt.Errorf("plane: prune nonces: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
