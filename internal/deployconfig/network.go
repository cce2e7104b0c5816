package deployconfig

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// A new VPC's subnets, per zone: a /24 public, a /22 for tasks with egress
// and a /24 isolated, allocated in that order on their own boundaries, over
// two zones: they end 14 /24s into the range, which a /20 holds and a /21
// does not. A VPC is at most a /16.
const (
	MinCIDRPrefix = 16
	MaxCIDRPrefix = 20
)

// Subnets per role in an existing VPC: one per zone, two zones at least
// (the load balancer and the database subnet group need two).
const (
	minZones = 2
	maxZones = 6
)

var (
	vpcIDRE        = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	subnetIDRE     = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	routeTableIDRE = regexp.MustCompile(`^rtb-([0-9a-f]{8}|[0-9a-f]{17})$`)
	zoneRE         = regexp.MustCompile(`^([a-z]{2}-[a-z]+-[0-9])[a-z]$`)
)

// privateRanges are RFC 1918's: the only ranges a Tether VPC may use.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

func (v *validator) network(n Network, region string) {
	if !n.Existing() {
		v.newVPC(n)
		return
	}
	v.match("network.vpc_id", n.VpcID, vpcIDRE, "an existing VPC's ID such as vpc-0123456789abcdef0")
	if n.CIDR != "" {
		v.add("network.cidr", "the stacks create no VPC when vpc_id is set, so a CIDR has no use; remove cidr (or remove vpc_id to create a new VPC)")
	}
	if n.CreateEndpoints == nil {
		v.add("network.create_endpoints", "required with vpc_id: true to create the S3 gateway endpoint and the interface endpoints the tasks use, false if your VPC already has them (see docs/deployment-config.md)")
	}
	roles := []struct {
		name     string
		subnets  []Subnet
		optional bool
		routes   bool // route tables are used: the S3 gateway endpoint adds a route
	}{
		{"public", n.Subnets.Public, false, false},
		{"private", n.Subnets.Private, false, true},
		{"isolated", n.Subnets.Isolated, true, true},
	}
	owner := map[string]string{} // subnet ID -> where it was first given
	var zones []string
	var zonesFrom string
	for _, r := range roles {
		path := "network.subnets." + r.name
		if len(r.subnets) == 0 {
			if !r.optional {
				v.add(path, "required with vpc_id: one subnet in each of at least %d availability zones (%s)", minZones, roleUse[r.name])
			}
			continue
		}
		if len(r.subnets) < minZones || len(r.subnets) > maxZones {
			v.add(path, "%d subnets given: want one in each of %d to %d availability zones", len(r.subnets), minZones, maxZones)
		}
		seenZone := map[string]bool{}
		var roleZones []string
		for i, s := range r.subnets {
			p := fmt.Sprintf("%s[%d]", path, i)
			if v.match(p+".id", s.ID, subnetIDRE, "a subnet ID such as subnet-0123456789abcdef0") {
				if first, ok := owner[s.ID]; ok {
					v.add(p+".id", "%s is already given as %s; each role needs its own subnets (leave isolated out to use the private subnets for it)", s.ID, first)
				} else {
					owner[s.ID] = p
				}
			}
			if v.match(p+".zone", s.Zone, zoneRE, "the subnet's availability zone name as your account shows it, e.g. "+region+"a") {
				if m := zoneRE.FindStringSubmatch(s.Zone); m[1] != region {
					v.add(p+".zone", "%s is not in the deployment's region %s; use subnets of a VPC in %s", s.Zone, region, region)
				}
				if seenZone[s.Zone] {
					v.add(p+".zone", "a second subnet in %s: give one subnet per zone (the stacks spread over zones, not subnets)", s.Zone)
				}
				seenZone[s.Zone] = true
				roleZones = append(roleZones, s.Zone)
			}
			switch {
			case !r.routes && s.RouteTableID != "":
				v.add(p+".route_table_id", "the stacks add no route to public subnets; remove it")
			case r.routes && n.Endpoints() && s.RouteTableID == "":
				v.add(p+".route_table_id", "required with create_endpoints: true: the route table the S3 gateway endpoint adds its route to (rtb-…)")
			case s.RouteTableID != "":
				v.match(p+".route_table_id", s.RouteTableID, routeTableIDRE, "a route table ID such as rtb-0123456789abcdef0")
			}
		}
		if zonesFrom == "" {
			zones, zonesFrom = roleZones, path
		} else if !sameSet(zones, roleZones) {
			v.add(path, "covers zones %s but %s covers %s: give every role one subnet in each of the same zones", strings.Join(roleZones, ", "), zonesFrom, strings.Join(zones, ", "))
		}
	}
}

// roleUse says, in errors, what each subnet role is for.
var roleUse = map[string]string{
	"public":  "the internet-facing load balancer",
	"private": "the tasks; they need a route to the internet through your NAT or transit gateway",
}

func (v *validator) newVPC(n Network) {
	if n.CreateEndpoints != nil && !*n.CreateEndpoints {
		v.add("network.create_endpoints", "a new VPC has no other way to the AWS APIs from its isolated subnets; remove create_endpoints (or set vpc_id to use your own VPC)")
	}
	if len(n.Subnets.Public)+len(n.Subnets.Private)+len(n.Subnets.Isolated) > 0 {
		v.add("network.subnets", "subnets are only given for an existing VPC; set vpc_id too, or remove subnets to let the stack create them")
	}
	p, err := netip.ParsePrefix(n.CIDR)
	switch {
	case err != nil || !p.Addr().Is4():
		v.add("network.cidr", "%q is not valid: want an IPv4 CIDR block such as %s", truncate(n.CIDR), DefaultCIDR)
	case p.Masked() != p:
		v.add("network.cidr", "%s has host bits set; write the network address %s", n.CIDR, p.Masked())
	case !inPrivateRange(p):
		v.add("network.cidr", "%s is not a private (RFC 1918) range; use one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16", n.CIDR)
	case p.Bits() < MinCIDRPrefix || p.Bits() > MaxCIDRPrefix:
		v.add("network.cidr", "/%d is out of range: want /%d to /%d (a VPC is at most a /%d; the subnets, a /22 for tasks and two /24s per zone over two zones, need a /%d)",
			p.Bits(), MinCIDRPrefix, MaxCIDRPrefix, MinCIDRPrefix, MaxCIDRPrefix)
	}
}

func inPrivateRange(p netip.Prefix) bool {
	for _, r := range privateRanges {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[string]bool{}
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			return false
		}
	}
	return true
}
