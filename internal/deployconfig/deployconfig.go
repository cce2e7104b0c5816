// Package deployconfig reads and validates deployment.yaml, the one file that
// describes a customer's Tether deployment on AWS.
//
// Both the CDK app (deploy/cdk) and tetherctl read the same file through this
// package, so every deployment-specific value (domain, certificate, identity
// provider, CORS origins, email sender, AI provider, images, plane URL,
// sizing, IAM constraints) comes from the customer's configuration and never
// from code. The schema is documented in docs/deployment-config.md; every
// validation error names the field path and says how to fix it.
package deployconfig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tetherhq/tether/internal/auth/groupname"
	"github.com/tetherhq/tether/internal/upgradewindow"
)

// MaxFileSize bounds how much of a config file is read; a real one is a few
// kilobytes, so anything near this is a mistake (or hostile).
const MaxFileSize = 256 << 10

// SchemaVersion is the only deployment.yaml version this package understands.
const SchemaVersion = 1

// ErrInvalid is matched (errors.Is) by every parse and validation error.
var ErrInvalid = errors.New("invalid deployment config")

// Config is a parsed, validated deployment.yaml. Fields left empty in the
// file hold their documented defaults after Parse.
type Config struct {
	Version     int           `yaml:"version"`
	Name        string        `yaml:"name"`
	Account     string        `yaml:"account"`
	Region      string        `yaml:"region"`
	Domain      Domain        `yaml:"domain"`
	Auth        Auth          `yaml:"auth"`
	CORSOrigins []string      `yaml:"cors_origins"`
	EmailSender string        `yaml:"email_sender"`
	AI          AI            `yaml:"ai"`
	Images      Images        `yaml:"images"`
	Plane       Plane         `yaml:"plane"`
	Agent       Agent         `yaml:"agent"`
	License     License       `yaml:"license"`
	Network     Network       `yaml:"network"`
	Adopt       Adopt         `yaml:"adopt"`
	Sizing      Sizing        `yaml:"sizing"`
	Observe     Observability `yaml:"observability"`
	IAM         IAM           `yaml:"iam"`
	CDK         CDK           `yaml:"cdk"`
}

// Domain is where the service answers. Exactly one of CertificateARN and
// HostedZone is set: bring a certificate, or let the stack request one and
// validate it in a Route 53 zone the customer already has.
type Domain struct {
	Name           string      `yaml:"name"`
	CertificateARN string      `yaml:"certificate_arn"`
	HostedZone     *HostedZone `yaml:"hosted_zone"`
}

// HostedZone is an existing Route 53 public hosted zone that contains Domain.Name.
type HostedZone struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

// Auth provider names.
const (
	AuthOIDC    = "oidc"
	AuthCognito = "cognito"
)

// Auth chooses the identity provider: the customer's own OIDC issuer, or a
// Cognito user pool the stack creates.
type Auth struct {
	Provider string `yaml:"provider"`
	// Issuer and ClientID are for provider oidc.
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// CognitoDomainPrefix is for provider cognito: the hosted sign-in
	// domain prefix, which AWS requires to be unique in the region.
	CognitoDomainPrefix string `yaml:"cognito_domain_prefix"`
	// GroupsClaim and SharedGroups, both or neither, let members of the
	// listed groups see each other's documents (docsvc's
	// DOCSVC_OIDC_GROUPS_CLAIM and DOCSVC_OIDC_SHARED_GROUPS).
	GroupsClaim  string   `yaml:"groups_claim"`
	SharedGroups []string `yaml:"shared_groups"`
}

// AI provider names, as docsvc's DOCSVC_AI_PROVIDER spells them.
const (
	AILocal     = "local"
	AIOpenAI    = "openai"
	AIAnthropic = "anthropic"
	AIBedrock   = "bedrock"
)

// AI chooses where document text is sent for analysis. Keys are never in
// this file: the stack creates the secret and the operator fills it.
type AI struct {
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
	BaseURL  string `yaml:"base_url"`
}

// Image sources.
const (
	ImagesVendor = "vendor"
	ImagesBuild  = "build"
)

// Images says where container images come from. Either way they run from
// the customer's own ECR, referenced by digest.
type Images struct {
	Source string `yaml:"source"`
	// VendorRegistry is the registry tetherctl copies images from (source vendor).
	VendorRegistry string `yaml:"vendor_registry"`
	// DocsvcDigest and AgentDigest pin the first install's images; upgrades
	// change the stack's parameters instead of this file.
	DocsvcDigest string `yaml:"docsvc_digest"`
	AgentDigest  string `yaml:"agent_digest"`
}

// Plane is the vendor's coordination plane. An empty URL means air-gapped:
// releases are imported from files and the agent needs no internet egress.
type Plane struct {
	URL               string `yaml:"url"`
	Channel           string `yaml:"channel"`
	AutomaticUpgrades bool   `yaml:"automatic_upgrades"`
	// UpgradeWindow is when tether-upgrade may apply a staged release, in
	// internal/upgradewindow's grammar ("Sun 02:00-04:00", UTC); required
	// with AutomaticUpgrades. The services stack schedules a run at each
	// range's start and passes it as TETHER_UPGRADE_WINDOW.
	UpgradeWindow string `yaml:"upgrade_window"`
	// TrustedRoot is the vendor's TUF root.json, the content itself: the
	// agent verifies every release against it, air-gapped or not, so it is
	// required. The stack passes it to the agent as TETHER_TRUSTED_ROOT.
	TrustedRoot string `yaml:"trusted_root"`
}

// Diagnostics approval policies (agent.diagnostics_approval).
const (
	DiagnosticsManual    = "manual"
	DiagnosticsAutomatic = "automatic"
)

// Agent is the customer's policy for what the agent may send the vendor
// beyond its heartbeat. Both default to off.
type Agent struct {
	// Telemetry sends daily aggregate usage counts (TETHER_TELEMETRY).
	Telemetry bool `yaml:"telemetry"`
	// DiagnosticsApproval is manual (an operator approves each bundle with
	// tetherctl diag approve) or automatic (TETHER_AUTO_APPROVE_DIAGNOSTICS).
	DiagnosticsApproval string `yaml:"diagnostics_approval"`
}

// AutoApproveDiagnostics reports whether diagnostics bundles are uploaded
// without an operator's approval.
func (a Agent) AutoApproveDiagnostics() bool { return a.DiagnosticsApproval == DiagnosticsAutomatic }

// License holds what verifies the customer's license offline. The license
// itself is a secret the operator sets; the vendor's public key is not.
type License struct {
	// PublicKey is the vendor's license.pub: an Ed25519 public key in PEM.
	PublicKey string `yaml:"public_key"`
}

// Network is where the deployment runs: a VPC the network stack creates
// (CIDR, default DefaultCIDR), or the customer's existing VPC (VpcID with
// its Subnets), in which the stacks create no VPC, subnet, route or NAT.
type Network struct {
	CIDR  string `yaml:"cidr"`
	VpcID string `yaml:"vpc_id"`
	// CreateEndpoints says whether the network stack creates the VPC
	// endpoints (S3 gateway, interface endpoints for the AWS APIs the tasks
	// call). Left out, it is true for a new VPC; with vpc_id it must be
	// given, because a VPC that already has endpoints for these services
	// cannot take a second private-DNS endpoint for the same service.
	CreateEndpoints *bool   `yaml:"create_endpoints"`
	Subnets         Subnets `yaml:"subnets"`
}

// Subnets are an existing VPC's subnets, by role. Each role lists one subnet
// per availability zone, over the same zones.
type Subnets struct {
	// Public subnets hold the internet-facing load balancer.
	Public []Subnet `yaml:"public"`
	// Private subnets route to the internet through the customer's NAT (or
	// transit gateway): the tasks that need egress run there.
	Private []Subnet `yaml:"private"`
	// Isolated subnets hold the database, the agent's file system, the VPC
	// endpoints and the tasks that need no internet. Optional: left out, the
	// private subnets serve.
	Isolated []Subnet `yaml:"isolated"`
}

// Subnet is one existing subnet. Its zone is given so synth needs no AWS
// lookup; RouteTableID is needed on private and isolated subnets when the
// stack creates the S3 gateway endpoint (it adds a route to that table).
type Subnet struct {
	ID           string `yaml:"id"`
	Zone         string `yaml:"zone"`
	RouteTableID string `yaml:"route_table_id"`
}

// Existing reports whether the deployment uses the customer's VPC.
func (n Network) Existing() bool { return n.VpcID != "" }

// Endpoints reports whether the network stack creates the VPC endpoints.
func (n Network) Endpoints() bool { return n.CreateEndpoints == nil || *n.CreateEndpoints }

// IsolatedSubnets are the subnets for the database, the agent's file system,
// the endpoints and tasks without internet: Subnets.Isolated, or the private
// subnets when none are given.
func (n Network) IsolatedSubnets() []Subnet {
	if len(n.Subnets.Isolated) > 0 {
		return n.Subnets.Isolated
	}
	return n.Subnets.Private
}

// Zones are an existing VPC's availability zones, in the order of its
// private subnets (every role covers the same zones).
func (n Network) Zones() []string {
	zones := make([]string, len(n.Subnets.Private))
	for i, s := range n.Subnets.Private {
		zones[i] = s.Zone
	}
	return zones
}

// Sizing is capacity: task counts and the database.
type Sizing struct {
	APITasks            int    `yaml:"api_tasks"`
	WorkerMin           int    `yaml:"worker_min"`
	WorkerMax           int    `yaml:"worker_max"`
	DatabaseClass       string `yaml:"database_class"`
	DatabaseStorageGiB  int    `yaml:"database_storage_gib"`
	MultiAZ             bool   `yaml:"multi_az"`
	PerformanceInsights bool   `yaml:"performance_insights"`
}

// Observability is log retention, where alarms go and when they fire.
type Observability struct {
	LogRetentionDays int        `yaml:"log_retention_days"`
	AlarmEmail       string     `yaml:"alarm_email"`
	Thresholds       Thresholds `yaml:"thresholds"`
}

// Thresholds are where the storage-growth alarms fire (the services
// stack's alarms; tetherctl status warns at the same values).
type Thresholds struct {
	// QueueAgeMinutes: the oldest job has waited this long.
	QueueAgeMinutes int `yaml:"queue_age_minutes"`
	// DeadLetters: this many jobs are in the dead-letter queue.
	DeadLetters int `yaml:"dead_letters"`
	// DatabaseFreePercent: the database's free storage fell to this share
	// of its allocated size.
	DatabaseFreePercent int `yaml:"database_free_percent"`
	// DocumentsGiB: the documents bucket holds this much.
	DocumentsGiB int `yaml:"documents_gib"`
}

// IAM holds constraints the customer's service control policies impose.
type IAM struct {
	// PermissionsBoundary is the name of a managed policy attached as the
	// boundary of every role the stacks create.
	PermissionsBoundary string `yaml:"permissions_boundary"`
}

// CDK holds the customer's CDK bootstrap settings.
type CDK struct {
	Qualifier string `yaml:"qualifier"`
}

// Defaults applied by Parse to fields the file leaves empty.
const (
	DefaultChannel          = "stable"
	DefaultAPITasks         = 2
	DefaultWorkerMin        = 1
	DefaultWorkerMax        = 4
	DefaultDatabaseClass    = "db.t4g.medium"
	DefaultDatabaseGiB      = 50
	DefaultLogRetentionDays = 90
	// The storage-growth alarms' thresholds (observability.thresholds).
	DefaultQueueAgeMinutes     = 15
	DefaultDeadLetters         = 1
	DefaultDatabaseFreePercent = 10
	DefaultDocumentsGiB        = 1024
	// The task counts' bounds, shared with tetherctl scale and the services
	// stack's ApiTaskCount, WorkerMinTasks and WorkerMaxTasks parameters.
	MaxAPITasks    = 50
	MaxWorkerTasks = 200
)

// DefaultCIDR is the new VPC's range when network.cidr is left out.
const DefaultCIDR = "10.40.0.0/16"

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("deployconfig: load: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("deployconfig: load: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("deployconfig: load: %w", err)
	}
	return cfg, nil
}

// Parse decodes deployment.yaml strictly (unknown fields are errors), fills
// defaults and validates. All problems are reported at once, one per line.
func Parse(data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: file is larger than %d bytes", ErrInvalid, MaxFileSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, cleanYAMLError(err.Error()))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: the file must be one YAML mapping starting with \"version: %d\"", ErrInvalid, SchemaVersion)
	}
	keys := keyPaths(doc.Content[0], "")
	// Repeated keys are refused here, before the typed decode: yaml.v3
	// reports them pairwise, which a hostile file turns into millions of errors.
	if problems := repeatedKeys(keys); len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}

	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, &Error{Problems: describeTypeErrors(te.Errors, keys)}
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalid, cleanYAMLError(err.Error()))
	}
	// A second document would be silently ignored by Decode; refuse it so the
	// operator is never surprised by half a file taking effect.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file holds more than one YAML document; keep only one", ErrInvalid)
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Error lists every problem found in a config, each "path: what is wrong; fix".
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid deployment config:\n  " + strings.Join(e.Problems, "\n  ")
}

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func (c *Config) applyDefaults() {
	if c.Auth.Provider == "" {
		c.Auth.Provider = AuthOIDC
	}
	if c.AI.Provider == "" {
		c.AI.Provider = AILocal
	}
	if c.Images.Source == "" {
		c.Images.Source = ImagesVendor
	}
	if c.Plane.Channel == "" {
		c.Plane.Channel = DefaultChannel
	}
	if c.Network.VpcID == "" && c.Network.CIDR == "" {
		c.Network.CIDR = DefaultCIDR
	}
	if c.Agent.DiagnosticsApproval == "" {
		c.Agent.DiagnosticsApproval = DiagnosticsManual
	}
	s := &c.Sizing
	if s.APITasks == 0 {
		s.APITasks = DefaultAPITasks
	}
	if s.WorkerMin == 0 {
		s.WorkerMin = DefaultWorkerMin
	}
	if s.WorkerMax == 0 {
		s.WorkerMax = max(DefaultWorkerMax, s.WorkerMin)
	}
	if s.DatabaseClass == "" {
		s.DatabaseClass = DefaultDatabaseClass
	}
	if s.DatabaseStorageGiB == 0 {
		s.DatabaseStorageGiB = DefaultDatabaseGiB
	}
	if c.Observe.LogRetentionDays == 0 {
		c.Observe.LogRetentionDays = DefaultLogRetentionDays
	}
	t := &c.Observe.Thresholds
	for _, d := range []struct {
		f   *int
		def int
	}{{&t.QueueAgeMinutes, DefaultQueueAgeMinutes}, {&t.DeadLetters, DefaultDeadLetters},
		{&t.DatabaseFreePercent, DefaultDatabaseFreePercent}, {&t.DocumentsGiB, DefaultDocumentsGiB}} {
		if *d.f == 0 {
			*d.f = d.def
		}
	}
}

var (
	nameRE       = regexp.MustCompile(`^[a-z][a-z0-9-]{1,22}[a-z0-9]$`)
	accountRE    = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE     = regexp.MustCompile(`^[a-z]{2}-[a-z]+-[0-9]$`)
	hostRE       = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	certARNRE    = regexp.MustCompile(`^arn:aws:acm:([a-z]{2}-[a-z]+-[0-9]):([0-9]{12}):certificate/[0-9a-f-]{36}$`)
	zoneIDRE     = regexp.MustCompile(`^Z[A-Z0-9]{1,31}$`)
	emailRE      = regexp.MustCompile(`^[A-Za-z0-9._%+-]{1,64}@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	modelRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)
	digestRE     = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	registryRE   = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$`)
	channelRE    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	dbClassRE    = regexp.MustCompile(`^db\.[a-z0-9]+\.[a-z0-9]+$`)
	boundaryRE   = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,128}$`)
	qualifierRE  = regexp.MustCompile(`^[a-z0-9]{1,10}$`)
	cognitoPfxRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	claimRE      = regexp.MustCompile(`^[!-~]{1,256}$`)
)

// Validate checks a Config (defaults already applied) and returns an *Error
// listing every problem, or nil.
func (c *Config) Validate() error {
	var v validator
	if c.Version != SchemaVersion {
		v.add("version", "must be %d; add \"version: %d\" at the top of the file", SchemaVersion, SchemaVersion)
	}
	v.match("name", c.Name, nameRE, "3–24 characters of lowercase letters, digits and '-', starting with a letter (it prefixes every resource name)")
	v.match("account", c.Account, accountRE, "the 12-digit AWS account ID, quoted so YAML keeps leading zeros")
	v.match("region", c.Region, regionRE, "a commercial AWS region such as eu-west-1")
	if strings.HasPrefix(c.Region, "us-gov-") || strings.HasPrefix(c.Region, "cn-") {
		v.add("region", "GovCloud and China regions are not supported in this release; choose a commercial region")
	}

	v.match("domain.name", c.Domain.Name, hostRE, "the lowercase host name the service answers on, e.g. docs.example.com")
	switch {
	case c.Domain.CertificateARN != "" && c.Domain.HostedZone != nil:
		v.add("domain", "set either certificate_arn or hosted_zone, not both")
	case c.Domain.CertificateARN != "":
		if m := certARNRE.FindStringSubmatch(c.Domain.CertificateARN); m == nil {
			v.add("domain.certificate_arn", "must be an ACM certificate ARN like arn:aws:acm:REGION:ACCOUNT:certificate/UUID")
		} else if m[1] != c.Region || m[2] != c.Account {
			v.add("domain.certificate_arn", "the certificate must be in the deployment's account and region (%s, %s) for the load balancer to use it", c.Account, c.Region)
		}
	case c.Domain.HostedZone != nil:
		z := c.Domain.HostedZone
		v.match("domain.hosted_zone.id", z.ID, zoneIDRE, "a Route 53 hosted zone ID such as Z0123456789ABCDEFGHIJ")
		if v.match("domain.hosted_zone.name", z.Name, hostRE, "the zone's domain name, e.g. example.com") &&
			c.Domain.Name != z.Name && !strings.HasSuffix(c.Domain.Name, "."+z.Name) {
			v.add("domain.hosted_zone.name", "domain.name %q is not inside zone %q; use the zone that contains it", c.Domain.Name, z.Name)
		}
	default:
		v.add("domain", "set certificate_arn (an ACM certificate you already have) or hosted_zone (the stack requests one)")
	}

	switch c.Auth.Provider {
	case AuthOIDC:
		v.httpsURL("auth.issuer", c.Auth.Issuer, "your identity provider's OIDC issuer URL")
		if c.Auth.ClientID == "" || len(c.Auth.ClientID) > 256 || strings.ContainsAny(c.Auth.ClientID, " \t\r\n") {
			v.add("auth.client_id", "required: the client (application) ID registered for this service at your identity provider")
		}
		if c.Auth.CognitoDomainPrefix != "" {
			v.add("auth.cognito_domain_prefix", "only used with provider cognito; remove it")
		}
	case AuthCognito:
		if c.Auth.Issuer != "" || c.Auth.ClientID != "" {
			v.add("auth", "issuer and client_id come from the user pool the stack creates; remove them for provider cognito")
		}
		v.match("auth.cognito_domain_prefix", c.Auth.CognitoDomainPrefix, cognitoPfxRE, "a lowercase prefix for the Cognito sign-in domain, unique in the region")
		if strings.Contains(c.Auth.CognitoDomainPrefix, "aws") || strings.Contains(c.Auth.CognitoDomainPrefix, "cognito") {
			v.add("auth.cognito_domain_prefix", "AWS reserves prefixes containing \"aws\" or \"cognito\"; choose another")
		}
	default:
		v.add("auth.provider", "must be %q (your own identity provider) or %q (the stack creates a user pool)", AuthOIDC, AuthCognito)
	}
	v.sharedGroups(c.Auth)

	if len(c.CORSOrigins) > 20 {
		v.add("cors_origins", "at most 20 origins")
	}
	seen := map[string]bool{}
	for i, o := range c.CORSOrigins {
		p := fmt.Sprintf("cors_origins[%d]", i)
		if !v.httpsURL(p, o, "an origin such as https://app.example.com") {
			continue
		}
		if strings.TrimSuffix(o, "/") != o || strings.Count(o, "/") != 2 {
			v.add(p, "an origin is scheme and host only, with no path or trailing slash")
		}
		if seen[o] {
			v.add(p, "duplicate of an earlier origin; remove it")
		}
		seen[o] = true
	}
	v.match("email_sender", c.EmailSender, emailRE, "the address notifications are sent from, e.g. noreply@example.com")

	switch c.AI.Provider {
	case AILocal:
		if c.AI.Model != "" || c.AI.BaseURL != "" {
			v.add("ai", "the local analyzer takes no model or base_url; remove them")
		}
	case AIOpenAI:
		v.match("ai.model", c.AI.Model, modelRE, "the model name your endpoint serves, e.g. gpt-4o-mini")
		v.httpsURL("ai.base_url", c.AI.BaseURL, "your OpenAI-compatible endpoint's base URL (OpenAI's public API, Azure OpenAI's /openai/v1, or your vLLM)")
	case AIAnthropic:
		v.match("ai.model", c.AI.Model, modelRE, "an Anthropic model name, e.g. claude-sonnet-4-5")
		if c.AI.BaseURL != "" {
			v.httpsURL("ai.base_url", c.AI.BaseURL, "an Anthropic API base URL, or leave it out for the default")
		}
	case AIBedrock:
		v.match("ai.model", c.AI.Model, modelRE, "a Bedrock model ID enabled in this region, e.g. anthropic.claude-3-5-haiku-20241022-v1:0")
		if c.AI.BaseURL != "" {
			v.add("ai.base_url", "Bedrock is reached through a VPC endpoint in the deployment's region; remove base_url")
		}
	default:
		v.add("ai.provider", "must be one of %s, %s, %s, %s", AILocal, AIOpenAI, AIAnthropic, AIBedrock)
	}

	switch c.Images.Source {
	case ImagesVendor:
		v.match("images.vendor_registry", c.Images.VendorRegistry, registryRE, "the vendor registry and path tetherctl copies images from, e.g. registry.vendor.example/tether")
	case ImagesBuild:
		if c.Images.VendorRegistry != "" {
			v.add("images.vendor_registry", "images are built in your account with source build; remove vendor_registry")
		}
	default:
		v.add("images.source", "must be %q (copy the vendor's images into your ECR) or %q (build them in your account)", ImagesVendor, ImagesBuild)
	}
	for _, d := range []struct{ path, val string }{{"images.docsvc_digest", c.Images.DocsvcDigest}, {"images.agent_digest", c.Images.AgentDigest}} {
		if d.val != "" && !digestRE.MatchString(d.val) {
			v.add(d.path, "must be an image digest sha256:<64 hex>, or left out so tetherctl passes the release's digest")
		}
	}

	if c.Plane.URL != "" {
		v.httpsURL("plane.url", c.Plane.URL, "the vendor's coordination plane URL, or leave it out when air-gapped")
	}
	v.match("plane.channel", c.Plane.Channel, channelRE, "a release channel name such as stable")
	switch {
	case c.Plane.AutomaticUpgrades && c.Plane.UpgradeWindow == "":
		v.add("plane.upgrade_window", "automatic upgrades need a maintenance window such as \"Sun 02:00-04:00\" (UTC); set it or turn upgrades off")
	case c.Plane.UpgradeWindow != "" && !c.Plane.AutomaticUpgrades:
		v.add("plane.upgrade_window", "has no effect without plane.automatic_upgrades: true; set that or remove the window")
	case c.Plane.UpgradeWindow != "":
		if _, err := upgradewindow.Parse(c.Plane.UpgradeWindow); err != nil {
			v.add("plane.upgrade_window", "%v", err)
		}
	}
	if problem := checkTUFRoot(c.Plane.TrustedRoot); problem != "" {
		v.add("plane.trusted_root", "%s; paste the content of the vendor's root.json", problem)
	}
	c.Agent.validate(&v, c.Plane.URL != "")
	if problem := checkEd25519PEM(c.License.PublicKey); problem != "" {
		v.add("license.public_key", "%s; paste the vendor's license.pub (-----BEGIN PUBLIC KEY----- …)", problem)
	}

	v.network(c.Network, c.Region)
	v.adopt(c)

	s := c.Sizing
	v.between("sizing.api_tasks", s.APITasks, 1, MaxAPITasks)
	v.between("sizing.worker_min", s.WorkerMin, 0, MaxWorkerTasks)
	v.between("sizing.worker_max", s.WorkerMax, 1, MaxWorkerTasks)
	if s.WorkerMax < s.WorkerMin {
		v.add("sizing.worker_max", "must be at least worker_min (%d)", s.WorkerMin)
	}
	v.match("sizing.database_class", s.DatabaseClass, dbClassRE, "an RDS instance class such as db.t4g.medium")
	v.between("sizing.database_storage_gib", s.DatabaseStorageGiB, 20, 65536)
	if s.MultiAZ && s.APITasks < 2 {
		v.add("sizing.api_tasks", "multi_az needs at least 2 API tasks so each zone serves")
	}

	v.between("observability.log_retention_days", c.Observe.LogRetentionDays, 1, 3653)
	t := c.Observe.Thresholds
	v.between("observability.thresholds.queue_age_minutes", t.QueueAgeMinutes, 1, 1440)
	v.between("observability.thresholds.dead_letters", t.DeadLetters, 1, 100000)
	v.between("observability.thresholds.database_free_percent", t.DatabaseFreePercent, 1, 50)
	v.between("observability.thresholds.documents_gib", t.DocumentsGiB, 1, 10000000)
	if c.Observe.AlarmEmail != "" {
		v.match("observability.alarm_email", c.Observe.AlarmEmail, emailRE, "the address alarm notifications go to")
	}
	if c.IAM.PermissionsBoundary != "" {
		v.match("iam.permissions_boundary", c.IAM.PermissionsBoundary, boundaryRE, "the name (not the ARN) of the managed policy your SCPs require as a boundary")
	}
	if c.CDK.Qualifier != "" {
		v.match("cdk.qualifier", c.CDK.Qualifier, qualifierRE, "the qualifier you passed to cdk bootstrap: up to 10 lowercase letters and digits")
	}
	return v.err()
}

func (a Agent) validate(v *validator, hasPlane bool) {
	switch a.DiagnosticsApproval {
	case DiagnosticsManual:
	case DiagnosticsAutomatic:
		if !hasPlane {
			v.add("agent.diagnostics_approval", "automatic uploads diagnostics to the plane, and plane.url is not set (air-gapped); use %q or set plane.url", DiagnosticsManual)
		}
	default:
		v.add("agent.diagnostics_approval", "%q is not valid: want %q (an operator approves each bundle) or %q (bundles are uploaded without approval)",
			truncate(a.DiagnosticsApproval), DiagnosticsManual, DiagnosticsAutomatic)
	}
	if a.Telemetry && !hasPlane {
		v.add("agent.telemetry", "telemetry is sent to the plane, and plane.url is not set (air-gapped); set telemetry: false or set plane.url")
	}
}

// WorkerNeedsInternet reports whether the workers must reach the internet
// (through NAT) for AI analysis. The API always does (it fetches the identity
// provider's signing keys); the local analyzer and Bedrock (VPC endpoint) don't.
func (c *Config) WorkerNeedsInternet() bool {
	return c.AI.Provider == AIOpenAI || c.AI.Provider == AIAnthropic
}

// AgentNeedsInternet reports whether the agent talks to a plane (not air-gapped).
func (c *Config) AgentNeedsInternet() bool { return c.Plane.URL != "" }

// PublicURL is the service's base URL.
func (c *Config) PublicURL() string { return "https://" + c.Domain.Name }

// ParameterPath is the SSM Parameter Store prefix for this deployment's config.
func (c *Config) ParameterPath() string { return "/tether/" + c.Name + "/config" }

// SecretName is the Secrets Manager name of one of this deployment's secrets
// (app, auth, ai, license, agent-identity, database).
func (c *Config) SecretName(kind string) string { return "tether/" + c.Name + "/" + kind }

// AgentRoleName is the agent task role's fixed name. It is fixed so the data
// stack can deny it by ARN without depending on the services stack.
func (c *Config) AgentRoleName() string { return c.ResourceName("agent") }

// ResourceName is the name the stacks give one of the deployment's
// resources (the ECS cluster for "", services, alarms, roles), which
// tetherctl then finds by the same name: tether-<name>[-<suffix>].
func (c *Config) ResourceName(suffix string) string {
	if suffix == "" {
		return "tether-" + c.Name
	}
	return "tether-" + c.Name + "-" + suffix
}

// ReleaseRecordParameter is the SSM parameter tetherctl and tether-upgrade
// record upgrades in and the agent reads (internal/releasestate.RecordRE
// is its shape).
func (c *Config) ReleaseRecordParameter() string { return "/tether/" + c.Name + "/state/releases" }

// ExchangeRoleName is the exchange task role's fixed name, for the same
// reason: the exchange bucket's policy names it.
func (c *Config) ExchangeRoleName() string { return c.ResourceName("exchange") }

// checkEd25519PEM describes what is wrong with a PEM public key, or "".
// MaxTrustedRootSize bounds plane.trusted_root. The root travels in the
// agent's task definition, which ECS limits to 64 KiB in all; a real root
// with a handful of keys is a few KiB.
const MaxTrustedRootSize = 16 << 10

// checkTUFRoot reports why s is not a TUF root.json, or "". It checks the
// shape only (a JSON object whose signed._type is "root"): the agent
// verifies the signatures when it starts, and a typo here should fail at
// synth, not at the first task start.
func checkTUFRoot(s string) string {
	if strings.TrimSpace(s) == "" {
		return "required"
	}
	if len(s) > MaxTrustedRootSize {
		return fmt.Sprintf("is larger than %d bytes", MaxTrustedRootSize)
	}
	var root struct {
		Signed *struct {
			Type string `json:"_type"`
		} `json:"signed"`
		Signatures []json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(s), &root); err != nil {
		return "not a JSON object"
	}
	if root.Signed == nil || root.Signed.Type != "root" || root.Signatures == nil {
		return `not a TUF root (want an object with "signed": {"_type": "root", …} and "signatures")`
	}
	return ""
}

func checkEd25519PEM(s string) string {
	if strings.TrimSpace(s) == "" {
		return "required"
	}
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" || strings.TrimSpace(string(rest)) != "" {
		return "not a single PEM PUBLIC KEY block"
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return "the PEM block does not hold a public key"
	}
	if _, ok := key.(ed25519.PublicKey); !ok {
		return "the key is not Ed25519"
	}
	return ""
}

type validator struct{ problems []string }

// sharedGroups checks auth.groups_claim and auth.shared_groups by the
// rules docsvc applies to its variables at start.
func (v *validator) sharedGroups(a Auth) {
	switch {
	case a.GroupsClaim == "" && len(a.SharedGroups) == 0:
		return
	case a.GroupsClaim == "":
		v.add("auth.groups_claim", "required with auth.shared_groups: the token claim that lists a person's groups, e.g. groups (cognito:groups with provider cognito)")
	case len(a.SharedGroups) == 0:
		v.add("auth.shared_groups", "required with auth.groups_claim: the groups whose members see each other's documents, e.g. [finance, legal]")
	}
	if a.GroupsClaim != "" {
		v.match("auth.groups_claim", a.GroupsClaim, claimRE, "the claim's name exactly as in the token, e.g. groups")
	}
	if len(a.SharedGroups) > 100 {
		v.add("auth.shared_groups", "at most 100 groups")
		return
	}
	for i, g := range a.SharedGroups {
		if err := groupname.Valid(g); err != nil {
			v.add(fmt.Sprintf("auth.shared_groups[%d]", i), "%q is not valid: %s; write it exactly as the token's claim carries it",
				g, strings.TrimPrefix(err.Error(), groupname.ErrBad.Error()+": "))
		}
	}
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, path+": "+fmt.Sprintf(format, args...))
}

func (v *validator) match(path, val string, re *regexp.Regexp, want string) bool {
	switch {
	case val == "":
		v.add(path, "required: %s", want)
	case !re.MatchString(val):
		v.add(path, "%q is not valid: want %s", truncate(val), want)
	default:
		return true
	}
	return false
}

func (v *validator) between(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(path, "%d is out of range: want %d to %d", n, lo, hi)
	}
}

// httpsURL accepts https://host[:port][/path] with no credentials, query or fragment.
func (v *validator) httpsURL(path, val, want string) bool {
	if val == "" {
		v.add(path, "required: %s", want)
		return false
	}
	rest, ok := strings.CutPrefix(val, "https://")
	host, _, _ := strings.Cut(rest, "/")
	if h, port, hasPort := strings.Cut(host, ":"); hasPort {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			ok = false
		}
		host = h
	}
	if !ok || !hostRE.MatchString(host) || strings.ContainsAny(rest, "?#@ \t\r\n\\") {
		v.add(path, "%q is not valid: want %s (https, lowercase host, no query or credentials)", truncate(val), want)
		return false
	}
	return true
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &Error{Problems: v.problems}
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// keyPath is where a mapping key sits in the file.
type keyPath struct {
	line      int // line of the key
	valueLine int // line where its value starts
	name      string
	path      string
}

func keyPaths(n *yaml.Node, prefix string) []keyPath {
	var out []keyPath
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			out = append(out, keyPath{line: k.Line, valueLine: val.Line, name: k.Value, path: p})
			out = append(out, keyPaths(val, p)...)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			out = append(out, keyPath{line: item.Line, valueLine: item.Line, path: p})
			out = append(out, keyPaths(item, p)...)
		}
	}
	return out
}

// repeatedKeys lists keys given twice in the same mapping (at most 20).
func repeatedKeys(keys []keyPath) []string {
	seen := map[string]int{}
	var out []string
	for _, k := range keys {
		if k.name == "" {
			continue // a list item, not a mapping key
		}
		if first, ok := seen[k.path]; ok {
			out = append(out, fmt.Sprintf("%s: given again on line %d (first on line %d); keep one", k.path, k.line, first))
			if len(out) == 20 {
				break
			}
			continue
		}
		seen[k.path] = k.line
	}
	return out
}

var (
	lineMsgRE    = regexp.MustCompile(`^line ([0-9]+): (.*)$`)
	unknownRE    = regexp.MustCompile(`^field (.*) not found in type `)
	unmarshalRE  = regexp.MustCompile(`^cannot unmarshal (\S+).* into (\S+)$`)
	goTypeWanted = map[string]string{
		"int": "a whole number", "bool": "true or false", "string": "a string",
		"[]string": "a list of strings",
	}
)

// describeTypeErrors turns yaml.v3's Go-flavoured messages ("field x not
// found in type deployconfig.Domain") into field paths and fixes.
func describeTypeErrors(msgs []string, keys []keyPath) []string {
	// A hostile or mangled file can yield errors quadratic in its size
	// (yaml.v3 reports each repeated key against every earlier one); the
	// first few are all an operator can act on anyway.
	const maxReported = 20
	var dropped int
	if len(msgs) > maxReported {
		msgs, dropped = msgs[:maxReported], len(msgs)-maxReported
	}
	byLine := map[int][]keyPath{}
	byValueLine := map[int]keyPath{}
	for _, k := range keys {
		byLine[k.line] = append(byLine[k.line], k)
		byValueLine[k.valueLine] = k // the innermost key whose value starts on a line wins
	}
	out := make([]string, 0, len(msgs)+1)
	for _, m := range msgs {
		lm := lineMsgRE.FindStringSubmatch(m)
		if lm == nil {
			out = append(out, m)
			continue
		}
		line, _ := strconv.Atoi(lm[1])
		msg := lm[2]
		if u := unknownRE.FindStringSubmatch(msg); u != nil {
			path := u[1]
			for _, k := range byLine[line] {
				if k.name == u[1] {
					path = k.path
					break
				}
			}
			out = append(out, fmt.Sprintf("%s: unknown field (line %d); check its spelling and place against docs/deployment-config.md", path, line))
			continue
		}
		path := "line " + lm[1]
		if k, ok := byValueLine[line]; ok {
			path = k.path
		}
		if u := unmarshalRE.FindStringSubmatch(msg); u != nil {
			want, ok := goTypeWanted[u[2]]
			if !ok {
				want = "a mapping of fields"
			}
			out = append(out, fmt.Sprintf("%s: got a %s value (line %d); want %s", path, strings.TrimPrefix(u[1], "!!"), line, want))
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s (line %d)", path, msg, line))
	}
	if dropped > 0 {
		out = append(out, fmt.Sprintf("… and %d more problems; fix these first", dropped))
	}
	return out
}

func cleanYAMLError(s string) string {
	return strings.TrimPrefix(s, "yaml: ")
}
