package deployconfig

import (
	"slices"
	"strings"
	"testing"
)

func TestParseNetwork(t *testing.T) {
	minimal, err := Parse(readExample(t, "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if minimal.Network.CIDR != DefaultCIDR || minimal.Network.Existing() || !minimal.Network.Endpoints() {
		t.Errorf("minimal.yaml network defaults: %+v", minimal.Network)
	}
	strict, err := Parse(readExample(t, "strict.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strict.Network.CIDR != "172.20.16.0/20" {
		t.Errorf("strict.yaml network.cidr = %q", strict.Network.CIDR)
	}
	ev, err := Parse(readExample(t, "existing-vpc.yaml"))
	if err != nil {
		t.Fatalf("existing-vpc.yaml: %v", err)
	}
	n := ev.Network
	if !n.Existing() || n.CIDR != "" || !n.Endpoints() || n.VpcID != "vpc-0a1b2c3d4e5f60718" || ev.Adopt != (Adopt{}) {
		t.Errorf("existing-vpc.yaml network: %+v", n)
	}
	if got := n.Zones(); !slices.Equal(got, []string{"eu-central-1a", "eu-central-1b"}) {
		t.Errorf("Zones() = %q", got)
	}
	if got := n.IsolatedSubnets(); len(got) != 2 || got[0].ID != "subnet-0dd1dd1dd1dd1dd10" || got[0].RouteTableID != "rtb-0ee1ee1ee1ee1ee10" {
		t.Errorf("IsolatedSubnets() = %+v", got)
	}
	// Without isolated subnets, the private ones serve.
	n.Subnets.Isolated = nil
	if got := n.IsolatedSubnets(); !slices.Equal(got, n.Subnets.Private) {
		t.Errorf("IsolatedSubnets() without isolated = %+v", got)
	}
}

// editExisting edits existing-vpc.yaml as editExample does.
func editExisting(t *testing.T, linePrefix, repl string) []byte {
	t.Helper()
	return editExample(t, "existing-vpc.yaml", linePrefix, repl)
}

func withNetwork(t *testing.T, network string) []byte {
	return append(readExample(t, "minimal.yaml"), []byte("network:\n"+network)...)
}

func TestParseRejectsNetwork(t *testing.T) {
	const (
		pubA  = "      - {id: subnet-0aa1aa1aa1aa1aa10, zone: eu-central-1a}"
		privB = "      - {id: subnet-0bb2bb2bb2bb2bb20, zone: eu-central-1b, route_table_id: rtb-0cc2cc2cc2cc2cc20}"
		isoB  = "      - {id: subnet-0dd2dd2dd2dd2dd20, zone: eu-central-1b, route_table_id: rtb-0ee1ee1ee1ee1ee10}"
	)
	tests := []rejectCase{
		{"cidr not a cidr", withNetwork(t, "  cidr: 10.40.0.0\n"), `network.cidr: "10.40.0.0" is not valid: want an IPv4 CIDR block`},
		{"cidr ipv6", withNetwork(t, "  cidr: fd00::/48\n"), "network.cidr: \"fd00::/48\" is not valid"},
		{"cidr host bits", withNetwork(t, "  cidr: 10.40.1.0/16\n"), "network.cidr: 10.40.1.0/16 has host bits set; write the network address 10.40.0.0/16"},
		{"cidr public", withNetwork(t, "  cidr: 8.8.0.0/16\n"), "network.cidr: 8.8.0.0/16 is not a private (RFC 1918) range"},
		{"cidr straddles private", withNetwork(t, "  cidr: 172.0.0.0/12\n"), "is not a private (RFC 1918) range"},
		{"cidr too big", withNetwork(t, "  cidr: 10.0.0.0/15\n"), "network.cidr: /15 is out of range: want /16 to /20"},
		{"cidr too small", withNetwork(t, "  cidr: 10.40.0.0/21\n"), "need a /20"},
		{"no endpoints in a new vpc", withNetwork(t, "  create_endpoints: false\n"), "network.create_endpoints: a new VPC has no other way"},
		{"subnets without vpc", withNetwork(t, "  subnets:\n    public: [{id: subnet-0aa1aa1aa1aa1aa10, zone: eu-west-1a}]\n"), "network.subnets: subnets are only given for an existing VPC"},
		{"cidr with vpc", editExisting(t, "  create_endpoints:", "  create_endpoints: true\n  cidr: 10.40.0.0/16"), "network.cidr: the stacks create no VPC when vpc_id is set"},
		{"vpc id shape", editExisting(t, "  vpc_id:", "  vpc_id: vpc-xyz"), `network.vpc_id: "vpc-xyz" is not valid`},
		{"endpoints undecided", editExisting(t, "  create_endpoints:", ""), "network.create_endpoints: required with vpc_id"},
		{"one zone", editExisting(t, pubA, ""), "network.subnets.public: 1 subnets given: want one in each of 2 to 6"},
		{"zones differ", editExisting(t, isoB, "      - {id: subnet-0dd2dd2dd2dd2dd20, zone: eu-central-1c, route_table_id: rtb-0ee1ee1ee1ee1ee10}"), "network.subnets.isolated: covers zones eu-central-1a, eu-central-1c but network.subnets.public covers eu-central-1a, eu-central-1b"},
		{"two subnets in a zone", editExisting(t, isoB, "      - {id: subnet-0dd2dd2dd2dd2dd20, zone: eu-central-1a, route_table_id: rtb-0ee1ee1ee1ee1ee10}"), "network.subnets.isolated[1].zone: a second subnet in eu-central-1a"},
		{"zone of another region", editExisting(t, pubA, "      - {id: subnet-0aa1aa1aa1aa1aa10, zone: eu-west-1a}"), "network.subnets.public[0].zone: eu-west-1a is not in the deployment's region eu-central-1"},
		{"zone id not name", editExisting(t, pubA, "      - {id: subnet-0aa1aa1aa1aa1aa10, zone: euc1-az2}"), `network.subnets.public[0].zone: "euc1-az2" is not valid`},
		{"subnet id shape", editExisting(t, pubA, "      - {id: sn-1, zone: eu-central-1a}"), `network.subnets.public[0].id: "sn-1" is not valid`},
		{"subnet in two roles", editExisting(t, isoB, "      - {id: subnet-0bb2bb2bb2bb2bb20, zone: eu-central-1b, route_table_id: rtb-0ee1ee1ee1ee1ee10}"), "network.subnets.isolated[1].id: subnet-0bb2bb2bb2bb2bb20 is already given as network.subnets.private[1]"},
		{"route table missing", editExisting(t, privB, "      - {id: subnet-0bb2bb2bb2bb2bb20, zone: eu-central-1b}"), "network.subnets.private[1].route_table_id: required with create_endpoints: true"},
		{"route table on public", editExisting(t, pubA, "      - {id: subnet-0aa1aa1aa1aa1aa10, zone: eu-central-1a, route_table_id: rtb-0cc2cc2cc2cc2cc20}"), "network.subnets.public[0].route_table_id: the stacks add no route to public subnets"},
		{"route table shape", editExisting(t, privB, "      - {id: subnet-0bb2bb2bb2bb2bb20, zone: eu-central-1b, route_table_id: main}"), `network.subnets.private[1].route_table_id: "main" is not valid`},
		{"no private subnets", editExisting(t, "    private:", "    privat:"), "network.subnets.privat: unknown field"},
		{"subnet field typo", editExisting(t, pubA, "      - {id: subnet-0aa1aa1aa1aa1aa10, az: eu-central-1a}"), "unknown field"},
	}
	expectRejects(t, tests)
}

// The bounds are what the CDK's subnet layout needs: a /20 is accepted, and
// an existing VPC may leave isolated out or skip the endpoints (then needs
// no route tables).
func TestParseAcceptsNetworkEdges(t *testing.T) {
	for name, in := range map[string][]byte{
		"/20":              withNetwork(t, "  cidr: 192.168.0.0/20\n"),
		"/16 in 172.16/12": withNetwork(t, "  cidr: 172.31.0.0/16\n"),
		"no isolated": []byte(strings.Split(string(editExisting(t, "  create_endpoints:", "  create_endpoints: true")), "    isolated:")[0] +
			strings.SplitN(string(readExample(t, "existing-vpc.yaml")), "rtb-0ee1ee1ee1ee1ee10}\n", 3)[2]),
		"no endpoints, no route tables": []byte(strings.NewReplacer(
			"create_endpoints: true", "create_endpoints: false",
			", route_table_id: rtb-0cc1cc1cc1cc1cc10", "", ", route_table_id: rtb-0cc2cc2cc2cc2cc20", "",
			", route_table_id: rtb-0ee1ee1ee1ee1ee10", "").Replace(string(readExample(t, "existing-vpc.yaml")))),
	} {
		cfg, err := Parse(in)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if name == "no isolated" && (len(cfg.Network.Subnets.Isolated) != 0 || len(cfg.Network.IsolatedSubnets()) != 2) {
			t.Errorf("no isolated: %+v", cfg.Network.Subnets)
		}
		if name == "no endpoints, no route tables" && cfg.Network.Endpoints() {
			t.Error("create_endpoints: false read as true")
		}
	}
}
