package plane

import "testing"

func TestRolePermissions(t *testing.T) {
	perms := []Permission{PermView, PermDiagRequest, PermDiagDownload, PermReleaseManage, PermLicenseManage, PermInstallRevoke, PermStaffManage}
	want := map[Role][]Permission{
		RoleViewer:   {PermView},
		RoleSupport:  {PermView, PermDiagRequest, PermDiagDownload},
		RoleRelease:  {PermView, PermReleaseManage},
		RoleAdmin:    perms,
		Role("root"): nil,
		Role(""):     nil,
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
