package plane

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/tetherhq/tether/internal/wire"
)

// Dashboard actions are HTML forms POSTed with the session cookie. The
// cookie is SameSite=Strict; each form also carries the session's CSRF
// token, and the role is checked again on the POST, so a hidden button is
// not the only thing between a role and an action.

// sessionID is the request's session cookie value, or "".
func sessionID(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken is the form token of a session: an HMAC keyed by the session's
// random ID, so every replica computes it without shared state and it
// reveals nothing about the ID.
func csrfToken(session string) string {
	if session == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(session))
	m.Write([]byte("tether-plane dashboard form"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// maxFormBytes caps a dashboard form; a license file is a few kilobytes.
const maxFormBytes = 256 << 10

// see guards a dashboard page that needs more than viewing.
func (s *Server) see(perm Permission, h http.HandlerFunc) http.HandlerFunc {
	return s.dashboard(func(w http.ResponseWriter, r *http.Request) {
		if p, _ := principalFrom(r.Context()); !Allows(p.Role, perm) {
			s.dashError(w, r, http.StatusForbidden, "Role "+string(p.Role)+" may not "+string(perm)+".")
			return
		}
		h(w, r)
	})
}

// act guards a dashboard form POST: a session, the session's CSRF token in
// the form, and a role that allows perm. Anything else is refused (403)
// before h runs.
func (s *Server) act(perm Permission, h http.HandlerFunc) http.HandlerFunc {
	return s.see(perm, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		var err error
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			err = r.ParseMultipartForm(maxFormBytes)
			if r.MultipartForm != nil {
				defer r.MultipartForm.RemoveAll()
			}
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			s.dashError(w, r, http.StatusBadRequest, "The form could not be read (at most 256 KiB); go back and send it again.")
			return
		}
		want := csrfToken(sessionID(r))
		if got := r.PostForm.Get("csrf"); want == "" || !hmac.Equal([]byte(got), []byte(want)) {
			s.dashError(w, r, http.StatusForbidden, "The form's CSRF token is missing or not this session's; reload the page and send the form again.")
			return
		}
		h(w, r)
	})
}

func (s *Server) handleDashRequestDiag(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, err := s.requestDiagnostics(r.Context(), id, strings.TrimSpace(r.PostForm.Get("reason")))
	if err != nil {
		s.dashFail(w, r, "request diagnostics from "+id, err)
		return
	}
	http.Redirect(w, r, "/installs/"+id+"?requested="+d.ID+"#diagnostics", http.StatusSeeOther)
}

type revokePage struct {
	page
	Install InstallView
}

func (s *Server) handleDashRevokeForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !wire.ValidID(id) {
		s.dashError(w, r, http.StatusBadRequest, "install ID must be 1-64 characters of A-Z a-z 0-9 _ -")
		return
	}
	in, err := s.store.Install(r.Context(), id)
	if err != nil {
		s.dashFail(w, r, "install "+id, err)
		return
	}
	s.render(w, "revoke", http.StatusOK, revokePage{page: s.pageFor(r, "Revoke "+id), Install: s.view(in)})
}

func (s *Server) handleDashRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.revokeInstall(r.Context(), id); err != nil {
		s.dashFail(w, r, "revoke "+id, err)
		return
	}
	http.Redirect(w, r, "/installs/"+id, http.StatusSeeOther)
}

func (s *Server) handleDashBundle(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.serveBundle(w, r, id); err != nil {
		s.dashFail(w, r, "diagnostic "+id, err)
	}
}

// handleDashRegisterLicense registers an uploaded license file as issued.
// The file's activation token is replaced by its SHA-256 here, in memory,
// before anything else sees it (RegistrationBody, as the CLI does), and the
// rest is the admin API's registration.
func (s *Server) handleDashRegisterLicense(w http.ResponseWriter, r *http.Request) {
	f, _, err := r.FormFile("file")
	if err != nil {
		s.dashError(w, r, http.StatusBadRequest, "Choose the license file to register.")
		return
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		s.dashError(w, r, http.StatusBadRequest, "The license file could not be read; send it again.")
		return
	}
	body, err := RegistrationBody(raw)
	if err != nil {
		s.dashError(w, r, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "plane: ")+".")
		return
	}
	rec, err := s.registerLicense(r.Context(), body)
	if err != nil {
		s.dashFail(w, r, "register license "+rec.ID, err)
		return
	}
	http.Redirect(w, r, "/licenses#license-"+rec.ID, http.StatusSeeOther)
}
