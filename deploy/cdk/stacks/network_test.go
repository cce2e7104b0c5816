package stacks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// An existing VPC that already has its endpoints and no isolated subnets:
// the stack creates no endpoint and needs no route table, and what would go
// in isolated subnets (database, agent's files, tasks without internet)
// goes in the private ones.
func TestExistingVpcWithoutEndpointsOrIsolatedSubnets(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "examples", "existing-vpc.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	isolated := strings.Index(text, "    isolated:")
	plane := strings.Index(text, "plane:\n")
	text = text[:isolated] + text[plane:]
	for _, rt := range []string{", route_table_id: rtb-0cc1cc1cc1cc1cc10", ", route_table_id: rtb-0cc2cc2cc2cc2cc20"} {
		text = strings.Replace(text, rt, "", 1)
	}
	text = strings.Replace(text, "create_endpoints: true", "create_endpoints: false", 1)
	cfg, err := deployconfig.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	s := synthConfig(t, "existing-vpc-no-endpoints", cfg)
	if n := len(resources(s, "network", "AWS::EC2::VPCEndpoint")); n != 0 {
		t.Errorf("%d VPC endpoints created with create_endpoints: false", n)
	}
	private := map[string]bool{}
	for _, sn := range cfg.Network.Subnets.Private {
		private[sn.ID] = true
	}
	for _, typ := range []string{"AWS::RDS::DBSubnetGroup", "AWS::EFS::MountTarget"} {
		n := 0
		for id, r := range resources(s, "data", typ) {
			ids := list(props(r)["SubnetIds"])
			if sn := props(r)["SubnetId"]; sn != nil {
				ids = []any{sn}
			}
			for _, sn := range ids {
				n++
				if !private[sn.(string)] {
					t.Errorf("%s %s in %v, want a private subnet", typ, id, sn)
				}
			}
		}
		if n != 2 {
			t.Errorf("%s in %d subnets, want the 2 private ones", typ, n)
		}
	}
}
