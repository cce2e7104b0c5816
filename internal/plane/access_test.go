package plane

import (
	"testing"

	"github.com/tetherhq/tether/internal/plane/planestore"
)

func TestRolePermissions(t *testing.T) {
	perms := []Permission{PermView, PermDiagRequest, PermDiagDownload, PermReleaseManage, PermLicenseManage, PermInstallRevoke, PermStaffManage}
	want := map[planestore.Role][]Permission{
		planestore.RoleViewer:   {PermView},
		planestore.RoleSupport:  {PermView, PermDiagRequest, PermDiagDownload},
		planestore.RoleRelease:  {PermView, PermReleaseManage},
		planestore.RoleAdmin:    perms,
		planestore.Role("root"): nil,
		planestore.Role(""):     nil,
	}
	for role, allowed := range want {
		for _, p := range perms {
			got := Allows(role, p)
			exp := false
			for _, a := range allowed {
				exp = exp || a == p
			}
			if got != exp {
				t.Errorf("Allows(%q, %s) = %v, want %v", role, p, got, exp)
			}
		}
	}
}
