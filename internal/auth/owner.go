package auth

import (
	"context"
	"fmt"

	"github.com/tetherhq/tether/internal/sqldb"
)

// Owner strings (Principal.Owner). Until the issuer became part of a
// person's owner string, documents were stored under legacyOwnerPrefix and
// the subject alone; only one issuer was ever accepted at a time, so such a
// row belongs to that subject at the issuer configured when it was written.
const (
	ownerUserPrefix   = "user:"
	legacyOwnerPrefix = "oidc:"
)

// MigrateOwners rewrites every document stored under a legacy owner
// ("oidc:<subject>") to issuer's owner string for that subject, and returns
// how many it rewrote. docsvc migrate runs it with the configured issuer;
// it is idempotent, and rows written later by a still-running older api are
// adopted one by one as their owners sign in (adoptLegacyOwner) until the
// next migrate. Without an issuer there is nobody to give them to, and it
// does nothing.
//
// This is the expand step of an expand/contract change: the column keeps
// its type, old readers of a rewritten row see an owner they do not match
// (the document is hidden from them, never shown to anyone else), and the
// release after the one that ships this may drop adoptLegacyOwner.
func MigrateOwners(ctx context.Context, db *sqldb.DB, issuer string) (int64, error) {
	if issuer == "" {
		return 0, nil
	}
	res, err := db.ExecContext(ctx,
		`UPDATE documents SET owner = CAST($1 AS TEXT) || substr(owner, $2) WHERE owner LIKE $3`,
		ownerUserPrefix+issuer+" ", len(legacyOwnerPrefix)+1, legacyOwnerPrefix+"%")
	if err != nil {
		return 0, fmt.Errorf("auth: migrate document owners: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("auth: migrate document owners: %w", err)
	}
	return n, nil
}

// adoptLegacyOwner gives p the documents an older api stored under p's
// legacy owner string, when p is a person from the configured issuer (the
// only one an older api accepted). It is an indexed no-op once they are
// adopted.
func (a *Authenticator) adoptLegacyOwner(ctx context.Context, p Principal) error {
	if p.Kind != KindOIDC || p.Issuer != a.issuer || a.issuer == "" {
		return nil
	}
	if _, err := a.db.ExecContext(ctx, `UPDATE documents SET owner = $1 WHERE owner = $2`,
		p.Owner(), legacyOwnerPrefix+p.ID); err != nil {
		return fmt.Errorf("auth: adopt legacy documents: %w", err)
	}
	return nil
}
