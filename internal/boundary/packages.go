package boundary

import (
	"strings"
)

// AgentPackage is the agent. tetherctl, which runs on the operator's
// workstation, and the packages it shares with the agent must not link it.
const AgentPackage = "github.com/tetherhq/tether/internal/agent"

// DocumentReaders returns the packages that read documents, their storage
// or their queue. The agent, tetherctl and what they share must never link
// one of them, or anything under one (internal/blob/blobtest,
// service/s3/types, ...): this is the code half of the data boundary.
func DocumentReaders() []string {
	return []string{
		"github.com/tetherhq/tether/internal/document",
		"github.com/tetherhq/tether/internal/blob",
		"github.com/tetherhq/tether/internal/queue",
		"github.com/tetherhq/tether/internal/extract",
		"github.com/tetherhq/tether/internal/analyze",
		"github.com/tetherhq/tether/internal/sqldb",
		"github.com/tetherhq/tether/internal/api",
		"github.com/tetherhq/tether/internal/worker",
		"github.com/tetherhq/tether/internal/docsvc",
		"github.com/aws/aws-sdk-go-v2/service/s3",
		"github.com/aws/aws-sdk-go-v2/service/sqs",
	}
}

// VendorOnly returns the packages only the vendor runs: release key
// management, publishing and export, request verification with its nonce
// store, license issuing, the plane itself, and the release images'
// assembly. The agent, the one piece of vendor code inside the customer's
// account, must never link one of them, nor may the packages it shares with
// the plane (internal/release, internal/reqsign, internal/license, ...): the
// shared halves hold only what both sides need.
func VendorOnly() []string {
	return []string{
		"github.com/tetherhq/tether/internal/release/publish",
		"github.com/tetherhq/tether/internal/reqsign/reqverify",
		"github.com/tetherhq/tether/internal/license/issuer",
		"github.com/tetherhq/tether/internal/plane",
		"github.com/tetherhq/tether/internal/imagebuild",
	}
}

// Matches reports whether pkg is one of forbidden or lies under one.
func Matches(pkg string, forbidden []string) bool {
	for _, f := range forbidden {
		if pkg == f || strings.HasPrefix(pkg, f+"/") {
			return true
		}
	}
	return false
}

// ExchangePackage is the one package through which tether-exchange and
// tetherctl reach S3: the agent exchange bucket (diagnostics requests for
// the operator to review, the egress ledger's copy). It addresses only the
// bucket it is given, and only that bucket's diagnostics/ and ledger/ keys;
// the CDK stack gives the exchange task's role no other bucket.
const ExchangePackage = "github.com/tetherhq/tether/internal/exchange"

// S3Packages returns the packages that reach S3: the SDK's client, what is
// built on it, and this module's gateway. The agent, which talks to the
// vendor, links none of them; tether-exchange, which writes the exchange
// bucket, never talks to the vendor.
func S3Packages() []string {
	return []string{
		"github.com/aws/aws-sdk-go-v2/service/s3",
		"github.com/aws/aws-sdk-go-v2/service/internal/s3shared",
		"github.com/aws/aws-sdk-go-v2/feature/s3",
		ExchangePackage,
	}
}

// Gateways maps a package of DocumentReaders to the one package that may
// import it in tether-exchange and tetherctl.
func Gateways() map[string]string {
	return map[string]string{"github.com/aws/aws-sdk-go-v2/service/s3": ExchangePackage}
}
