package collect

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tetherhq/tether/internal/wire"
)

// Metrics is what the agent keeps of docsvc's Prometheus page: six
// families, everything else is parsed (to reject a malformed page) and
// dropped.
type Metrics struct {
	// RequestsTotal and Requests5xx sum docsvc_http_requests_total over all
	// routes; counters, so the agent turns them into a rate between scrapes.
	RequestsTotal, Requests5xx float64
	// Documents is docsvc_documents by status (queued, processing,
	// succeeded, failed); nil when docsvc did not report it.
	Documents map[string]int64
	// StoredBytes is docsvc_stored_bytes; HasStoredBytes says it was there.
	StoredBytes    int64
	HasStoredBytes bool
	// Pages is docsvc_result_pages, the pages of all stored results.
	Pages int64
	// SchemaVersion is docsvc_schema_version, 0 when absent.
	SchemaVersion int64
	// Version is docsvc_build_info's version label when it is a valid
	// semantic version, else "".
	Version string
}

// documentStatuses are the docsvc_documents statuses the agent keeps.
var documentStatuses = []string{"queued", "processing", "succeeded", "failed"}

// Objects is the number of stored documents (all statuses).
func (m Metrics) Objects() int64 {
	var n int64
	for _, v := range m.Documents {
		n += v
	}
	return n
}

// ParseMetrics parses a Prometheus text-format page (version 0.0.4). Every
// line must be a comment, blank, or a well-formed sample; the families the
// agent uses must carry finite, non-negative values.
func ParseMetrics(data []byte) (Metrics, error) {
	if len(data) > MaxMetrics {
		return Metrics{}, fmt.Errorf("collect: metrics: %w: over %d bytes", ErrMalformed, MaxMetrics)
	}
	var m Metrics
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxMetrics)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return Metrics{}, fmt.Errorf("collect: metrics: %w: line %d: %s", ErrMalformed, n, err)
		}
		if err := m.add(s); err != nil {
			return Metrics{}, fmt.Errorf("collect: metrics: %w: line %d: %s", ErrMalformed, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Metrics{}, fmt.Errorf("collect: metrics: %w: %v", ErrMalformed, err)
	}
	return m, nil
}

func (m *Metrics) add(s sample) error {
	switch s.name {
	case "docsvc_http_requests_total", "docsvc_documents", "docsvc_stored_bytes", "docsvc_result_pages", "docsvc_schema_version":
		if math.IsNaN(s.value) || math.IsInf(s.value, 0) || s.value < 0 || s.value > 1<<53 {
			return fmt.Errorf("%s must be a finite count", s.name)
		}
	default:
		if s.name != "docsvc_build_info" {
			return nil
		}
	}
	switch s.name {
	case "docsvc_http_requests_total":
		m.RequestsTotal += s.value
		if c := s.labels["code"]; len(c) == 3 && c[0] == '5' {
			m.Requests5xx += s.value
		}
	case "docsvc_documents":
		st := s.labels["status"]
		if !slices.Contains(documentStatuses, st) {
			return nil // a status this agent does not know is not counted
		}
		if m.Documents == nil {
			m.Documents = map[string]int64{}
		}
		m.Documents[st] = int64(s.value)
	case "docsvc_stored_bytes":
		m.StoredBytes, m.HasStoredBytes = int64(s.value), true
	case "docsvc_result_pages":
		m.Pages = int64(s.value)
	case "docsvc_schema_version":
		m.SchemaVersion = int64(s.value)
	case "docsvc_build_info":
		if v := s.labels["version"]; wire.ValidSemver(v) {
			m.Version = v
		}
	}
	return nil
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// maxLabels bounds one sample's label set.
const maxLabels = 32

// parseSample reads `name{l="v",...} value [timestamp]`. Its errors
// describe the problem, never the text.
func parseSample(line string) (sample, error) {
	i := 0
	for i < len(line) && isNameChar(line[i], i == 0) {
		i++
	}
	if i == 0 {
		return sample{}, fmt.Errorf("expected a metric name")
	}
	s := sample{name: line[:i]}
	rest := line[i:]
	if strings.HasPrefix(rest, "{") {
		var err error
		if s.labels, rest, err = parseLabels(rest[1:]); err != nil {
			return sample{}, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return sample{}, fmt.Errorf("expected a value and an optional timestamp after the name")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return sample{}, fmt.Errorf("value is not a number")
	}
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return sample{}, fmt.Errorf("timestamp is not an integer")
		}
	}
	s.value = v
	return s, nil
}

// parseLabels reads label pairs up to the closing brace and returns what
// follows it.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		j := 0
		for j < len(s) && isNameChar(s[j], j == 0) && s[j] != ':' {
			j++
		}
		if j == 0 || j >= len(s) || s[j] != '=' || j+1 >= len(s) || s[j+1] != '"' {
			return nil, "", fmt.Errorf("expected label=\"value\"")
		}
		name := s[:j]
		s = s[j+2:]
		var val strings.Builder
		closed := false
		for k := 0; k < len(s); k++ {
			c := s[k]
			if c == '\\' {
				if k+1 >= len(s) {
					break
				}
				k++
				switch s[k] {
				case '\\':
					val.WriteByte('\\')
				case '"':
					val.WriteByte('"')
				case 'n':
					val.WriteByte('\n')
				default:
					return nil, "", fmt.Errorf("bad escape in a label value")
				}
				continue
			}
			if c == '"' {
				s, closed = s[k+1:], true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return nil, "", fmt.Errorf("unterminated label value")
		}
		if _, dup := labels[name]; dup {
			return nil, "", fmt.Errorf("repeated label")
		}
		if len(labels) == maxLabels {
			return nil, "", fmt.Errorf("more than %d labels", maxLabels)
		}
		labels[name] = val.String()
		s = strings.TrimLeft(s, " \t")
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
		case strings.HasPrefix(s, "}"):
		default:
			return nil, "", fmt.Errorf("expected , or } after a label")
		}
	}
}

func isNameChar(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		return true
	case c >= '0' && c <= '9':
		return !first
	}
	return false
}
