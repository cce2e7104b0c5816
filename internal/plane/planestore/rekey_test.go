package planestore_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
)

func TestStoreRekey(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		addLicense(t, b, "lic_1", "tok1")
		in, oldPriv := activate(t, b, "tok1")
		oldPub := oldPriv.Public().(ed25519.PublicKey)
		newPub, _, _ := ed25519.GenerateKey(nil)
		otherPub, _, _ := ed25519.GenerateKey(nil)
		if got, _ := b.store.Install(b.ctx, in.ID); got.RekeyedAt != nil {
			t.Fatalf("fresh install has RekeyedAt %v", got.RekeyedAt)
		}
		b.clock.Advance(time.Hour)
		if err := b.store.Rekey(b.ctx, in.ID, oldPub, newPub); err != nil {
			t.Fatalf("Rekey: %v", err)
		}
		if k, err := b.store.InstallKey(b.ctx, in.ID); err != nil || !k.Equal(newPub) {
			t.Fatalf("key after rekey = %x, %v; want the new key", k, err)
		}
		got, _ := b.store.Install(b.ctx, in.ID)
		if got.RekeyedAt == nil || !got.RekeyedAt.Equal(b.clock.Now()) {
			t.Fatalf("RekeyedAt = %v, want %v", got.RekeyedAt, b.clock.Now())
		}
		// Asking again (an agent that crashed before promoting) is a no-op.
		b.clock.Advance(time.Minute)
		if err := b.store.Rekey(b.ctx, in.ID, newPub, newPub); err != nil {
			t.Fatalf("repeat: %v", err)
		}
		if again, _ := b.store.Install(b.ctx, in.ID); !again.RekeyedAt.Equal(*got.RekeyedAt) {
			t.Fatalf("a repeated rekey moved RekeyedAt to %v", again.RekeyedAt)
		}
		// A second re-key claiming the old key as current loses.
		if err := b.store.Rekey(b.ctx, in.ID, oldPub, otherPub); !errors.Is(err, planestore.ErrKeyChanged) {
			t.Fatalf("rekey from the replaced key: %v, want ErrKeyChanged", err)
		}
		if err := b.store.Rekey(b.ctx, "in_missing", oldPub, otherPub); !errors.Is(err, planestore.ErrNotFound) {
			t.Fatalf("unknown install: %v", err)
		}
		if err := b.store.Revoke(b.ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		if err := b.store.Rekey(b.ctx, in.ID, newPub, otherPub); !errors.Is(err, planestore.ErrRevoked) {
			t.Fatalf("revoked install: %v, want ErrRevoked", err)
		}
	})
}
