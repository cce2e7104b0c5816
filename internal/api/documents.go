package api

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/auth"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/extract"
)

// maxFraming bounds what may be read of an upload's body before its
// document's bytes begin: the multipart preamble, any other fields and the
// file part's headers. A filename is at most document.MaxFilenameBytes, so
// this is ample; without it a client could make the server hold a header as
// large as the upload limit.
const maxFraming = 64 << 10

// errFraming is the framing reader's answer once maxFraming is spent.
var errFraming = errors.New("api: multipart headers exceed the limit")

// framingLimit fails reads past maxFraming until lift is called.
type framingLimit struct {
	r      io.Reader
	left   int64
	lifted bool
}

func (f *framingLimit) Read(p []byte) (int, error) {
	if f.lifted {
		return f.r.Read(p)
	}
	if f.left <= 0 {
		return 0, errFraming
	}
	p = p[:min(int64(len(p)), f.left)]
	n, err := f.r.Read(p)
	f.left -= int64(n)
	return n, err
}

func (f *framingLimit) lift() { f.lifted = true }

// errTooSlow is what a paced body returns once its deadline has passed.
var errTooSlow = errors.New("api: upload slower than the minimum rate")

// paced holds an upload to a minimum average rate without a fixed time
// limit: the connection's read deadline is start + grace + received/rate,
// moved forward as bytes arrive, so a client that trickles runs out of time
// while one that keeps up never does, however large its document. Past the
// deadline the connection's read fails and so does the upload, before
// anything was stored.
type paced struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64 // bytes per second, > 0
	n     int64 // bytes received
}

// deadline is when the bytes received so far stop covering the time spent.
func (p *paced) deadline() time.Time {
	earned := time.Duration(p.n/p.rate)*time.Second + time.Duration(p.n%p.rate*int64(time.Second)/p.rate)
	return p.start.Add(p.grace + earned)
}

func (p *paced) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.n += int64(n)
		_ = p.rc.SetReadDeadline(p.deadline())
	}
	switch {
	case err == io.EOF:
		// Every byte is in. net/http now reads ahead for the next request
		// and would cancel the request's context at the deadline, cutting
		// short the storing of an upload that kept to the rate.
		_ = p.rc.SetReadDeadline(time.Time{})
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return n, errTooSlow
	}
	return n, err
}

// pace wraps the request's body in a paced reader, if the connection
// supports read deadlines (every net/http server connection does).
func (s *Server) pace(w http.ResponseWriter, body io.Reader) (io.Reader, *paced) {
	// The system clock, not s.Now: a connection's read deadline is wall time.
	p := &paced{r: body, rc: http.NewResponseController(w), start: time.Now(),
		grace: cmp.Or(s.UploadGrace, DefaultUploadGrace), rate: cmp.Or(s.UploadMinRate, DefaultUploadMinRate)}
	if err := p.rc.SetReadDeadline(p.deadline()); err != nil {
		s.Log.Warn("upload: the connection takes no read deadline; uploads are not paced", "err", err)
		return body, p
	}
	return p, p
}

func (p *paced) tooSlowMessage() string {
	return fmt.Sprintf("the upload arrived slower than %d bytes per second on average (after the first %s), so it was cut off and nothing of it was stored; send it again over a faster connection",
		p.rate, p.grace)
}

// upload accepts one multipart field "file". The body is streamed to a spool
// file, never held whole in memory.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if s.Gate != nil {
		if err := s.Gate(s.Now()); err != nil {
			writeError(w, http.StatusForbidden, err.Error())
			return
		}
	}
	body, pacing := s.pace(w, r.Body)
	framing := &framingLimit{r: body, left: maxFraming}
	// Allow a little over the limit for the multipart framing; the document
	// itself is held to the limit exactly by Uploads.
	r.Body = http.MaxBytesReader(w, struct {
		io.Reader
		io.Closer
	}{framing, r.Body}, s.Uploads.MaxBytes+maxFraming)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "expected a multipart/form-data body with a field named \"file\"")
		return
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			var tooBig *http.MaxBytesError
			switch {
			case errors.Is(err, errTooSlow):
				w.Header().Set("Connection", "close")
				writeError(w, http.StatusRequestTimeout, pacing.tooSlowMessage())
			case errors.As(err, &tooBig):
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the upload exceeds the limit of %d bytes", s.Uploads.MaxBytes))
			case errors.Is(err, errFraming):
				writeError(w, http.StatusBadRequest, framingMessage())
			default:
				if c, inName, ok := headerControlChar(err); ok && inName {
					writeError(w, http.StatusBadRequest, controlCharMessage(c))
				} else if ok {
					writeError(w, http.StatusBadRequest, fmt.Sprintf("a multipart header contains a control character (%U), which is not allowed", c))
				} else {
					writeError(w, http.StatusBadRequest, "no multipart field named \"file\" in the request")
				}
			}
			return
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		framing.lift()
		d, err := s.Uploads.UploadAs(r.Context(), viewer(r), part.FileName(), part)
		part.Close()
		var tooBig *http.MaxBytesError
		var badName *document.FilenameError
		switch {
		case err == nil:
			writeJSON(w, http.StatusAccepted, d)
		case errors.Is(err, errTooSlow):
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestTimeout, pacing.tooSlowMessage())
		case errors.As(err, &badName):
			writeError(w, http.StatusBadRequest, filenameMessage(badName))
		case errors.Is(err, errFraming):
			// Read ahead while the file part's header was parsed.
			writeError(w, http.StatusBadRequest, framingMessage())
		case errors.Is(err, document.ErrTooLarge) || errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the upload exceeds the limit of %d bytes", s.Uploads.MaxBytes))
		case errors.Is(err, extract.ErrUnsupported):
			writeError(w, http.StatusUnsupportedMediaType, "unsupported document type; supported types: "+extract.SupportedTypes())
		case errors.Is(err, document.ErrEmpty):
			writeError(w, http.StatusBadRequest, "the uploaded file is empty")
		case errors.Is(err, document.ErrIncomplete):
			writeError(w, http.StatusBadRequest, "the upload was cut off or is not well-formed multipart; send it again")
		default:
			s.Log.Error("upload", "err", err)
			writeError(w, http.StatusInternalServerError, "the upload could not be stored; try again")
		}
		return
	}
}

func framingMessage() string {
	return fmt.Sprintf("the multipart data before the file's content (headers and other fields) exceeds %d bytes; a filename may be at most %d bytes", maxFraming, document.MaxFilenameBytes)
}

func filenameMessage(e *document.FilenameError) string {
	switch e.Reason {
	case document.ErrFilenameTooLong:
		return fmt.Sprintf("the filename is %d bytes long; the limit is %d bytes (UTF-8, after Unicode NFC normalisation): rename the file", e.Bytes, document.MaxFilenameBytes)
	case document.ErrFilenameControl:
		return controlCharMessage(e.Char)
	default:
		return "the filename is not valid UTF-8: rename the file, or send its name percent-encoded (filename*=UTF-8''...)"
	}
}

func controlCharMessage(c rune) string {
	return fmt.Sprintf("the filename contains a control character (%U), which is not allowed: rename the file", c)
}

// headerControlChar finds why Go's multipart reader refused a part's
// header when the reason is a control character (which textproto rejects
// in any header value, before a handler sees the filename), so the client
// is told that instead of "no field named file". inName reports whether it
// is in the Content-Disposition header's filename parameter.
func headerControlChar(err error) (c rune, inName, ok bool) {
	var pe textproto.ProtocolError
	if !errors.As(err, &pe) {
		return 0, false, false
	}
	quoted, found := strings.CutPrefix(string(pe), "malformed MIME header line: ")
	if !found {
		return 0, false, false
	}
	line, uerr := strconv.Unquote(quoted)
	if uerr != nil {
		return 0, false, false
	}
	for i := 0; i < len(line); i++ {
		if b := line[i]; b < 0x20 && b != '\t' || b == 0x7f {
			lower := strings.ToLower(line[:i])
			inName = strings.HasPrefix(lower, "content-disposition:") && strings.Contains(lower, "filename")
			return rune(b), inName, true
		}
	}
	return 0, false, false
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	d, err := s.Store.Visible(r.Context(), viewer(r), id)
	if s.storeErr(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > document.MaxListLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a whole number from 1 to %d", document.MaxListLimit))
			return
		}
		limit = n
	}
	docs, next, err := s.Store.ListVisible(r.Context(), viewer(r), limit, r.URL.Query().Get("cursor"))
	if errors.Is(err, document.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, "cursor is not one this service returned; start again without it")
		return
	}
	if s.storeErr(w, err) {
		return
	}
	if docs == nil {
		docs = []document.Document{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"documents": docs, "next_cursor": next})
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	// Only the uploader deletes; a member of a group it is shared with is
	// told so, having seen it already, and anyone else gets 404.
	v := viewer(r)
	d, err := s.Store.Visible(r.Context(), v, id)
	if s.storeErr(w, err) {
		return
	}
	if !d.OwnedBy(v.Owner) {
		writeError(w, http.StatusForbidden, "only the user who uploaded a document can delete it")
		return
	}
	if s.storeErr(w, document.Remove(r.Context(), s.Store, s.Blobs, v.Owner, id)) {
		return
	}
	s.Log.Info("document deleted", "document_id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	res, err := s.Store.VisibleResult(r.Context(), viewer(r), id)
	switch {
	case errors.Is(err, document.ErrNotFinished):
		writeError(w, http.StatusConflict, "processing has not finished; poll GET /v1/documents/"+id)
		return
	case errors.Is(err, document.ErrNoResult):
		writeError(w, http.StatusConflict, "the document failed and has no result; see its error")
		return
	}
	if s.storeErr(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !document.ValidID(id) {
		writeError(w, http.StatusNotFound, "no such document")
		return "", false
	}
	return id, true
}

// storeErr writes the response for a store error and reports whether it did.
func (s *Server) storeErr(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, document.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such document")
	default:
		s.Log.Error("store", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error; try again")
	}
	return true
}

// viewer names the authenticated caller as the documents' owner: each OIDC
// subject and each API token sees the documents it uploaded, and a person
// also those shared with the configured groups their token lists. The auth
// middleware guarantees a principal; without one the empty owner matches
// nothing a principal uploaded.
func viewer(r *http.Request) document.Viewer {
	p, _ := auth.PrincipalFrom(r.Context())
	return document.Viewer{Owner: p.Owner(), Groups: p.Groups}
}
