package planestore

// Role is what a member of the vendor's staff, or an automation token, may
// do on the plane. Roles are fixed; what each allows is the
// plane's access policy (plane.Allows).
type Role string

const (
	// RoleViewer sees the fleet: installs, heartbeats, alerts, releases.
	RoleViewer Role = "viewer"
	// RoleSupport also requests diagnostics and downloads approved bundles.
	RoleSupport Role = "support"
	// RoleRelease also publishes, promotes and revokes releases.
	RoleRelease Role = "release-manager"
	// RoleAdmin may do everything: licenses, installs, staff and tokens.
	RoleAdmin Role = "administrator"
)

// Roles lists every role, least powerful first.
func Roles() []Role { return []Role{RoleViewer, RoleSupport, RoleRelease, RoleAdmin} }

// Principal is who made a request to the admin API or the dashboard.
type Principal struct {
	// Kind is "staff" (signed in through the vendor's identity provider),
	// "token" (an automation token) or "break-glass" (the admin token).
	Kind string `json:"kind"`
	// ID is stable for the principal: the staff member's ID ("st_…"), the
	// token's ID ("tk_…"), or "admin-token".
	ID string `json:"id"`
	// Name is what people read: an e-mail address or a token's name.
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// Principal kinds.
const (
	KindStaff      = "staff"
	KindToken      = "token"
	KindBreakGlass = "break-glass"
)

// BreakGlass is the principal of the admin token.
func BreakGlass() Principal {
	return Principal{Kind: KindBreakGlass, ID: "admin-token", Name: "break-glass admin token", Role: RoleAdmin}
}

// String names the principal in logs and the audit log: "alice@vendor.example
// (support)".
func (p Principal) String() string {
	return p.Name + " (" + string(p.Role) + ")"
}

// AuditEntry is one staff action, as the audit log records it.
type AuditEntry struct {
	// Action names what was done, such as "diagnostics.request" or
	// "install.revoke".
	Action string `json:"action"`
	// Customer and InstallID name whose deployment it concerned, when it
	// concerned one.
	Customer  string `json:"customer,omitempty"`
	InstallID string `json:"install_id,omitempty"`
	// Target names what else it acted on: a license, release or token ID.
	Target string `json:"target,omitempty"`
	// Reason is why, as the person gave it.
	Reason string `json:"reason,omitempty"`
}
