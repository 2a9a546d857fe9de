package dcssim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi/signer"
)

// authenticate checks the credentials of a DCS request the way the API
// gateway does. On failure it returns the gateway's 401 answer.
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) (resp, bool) {
	if authz := r.Header.Get("Authorization"); authz != "" {
		if !strings.HasPrefix(authz, signer.Algorithm+" ") {
			return errAuth("unsupported authorization type, only " + signer.Algorithm + " is accepted"), false
		}
		secretFor := func(ak string) (string, bool) {
			sk, ok := s.cfg.AccessKeys[ak]
			return sk, ok
		}
		ak, err := signer.Verify(r, body, secretFor, now, signer.DefaultWindow)
		switch {
		case errors.Is(err, signer.ErrUnknownAccessKey):
			return errAuth("ak " + ak + " not exist"), false
		case errors.Is(err, signer.ErrSignatureExpired):
			return errAuth("calc aksk signature fail:" + err.Error()), false
		case errors.Is(err, signer.ErrSignatureMismatch):
			return errAuth(err.Error()), false
		case err != nil:
			return errAuth("verify aksk signature fail, " + err.Error()), false
		}
		if want, temporary := s.cfg.SecurityTokens[ak]; temporary {
			got := r.Header.Get("X-Security-Token")
			if got == "" {
				return errAuth("security token not found for temporary ak " + ak), false
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				return errAuth("verify security token fail for ak " + ak), false
			}
		}
		return resp{}, true
	}
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, st := range s.cfg.Tokens {
			if subtle.ConstantTimeCompare([]byte(tok), []byte(st)) == 1 {
				if s.staticRevoked {
					return errTokenExpired(), false
				}
				return resp{}, true
			}
		}
		if t, ok := s.tokens[tok]; ok {
			if t.revoked || !now.Before(t.expires) {
				return errTokenExpired(), false
			}
			return resp{}, true
		}
		return errAuth("decrypt token fail"), false
	}
	return errAuth("no authorization info found: send Authorization (AK/SK signature) or X-Auth-Token"), false
}

type tokenRequest struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *struct {
					Name     string `json:"name"`
					Password string `json:"password"`
					Domain   *struct {
						Name string `json:"name"`
					} `json:"domain"`
				} `json:"user"`
			} `json:"password"`
		} `json:"identity"`
		Scope *struct {
			Project *struct {
				Name string `json:"name"`
				ID   string `json:"id"`
			} `json:"project"`
		} `json:"scope"`
	} `json:"auth"`
}

type nameID struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Domain *nameID `json:"domain,omitempty"`
}

type tokenBody struct {
	Token struct {
		ExpiresAt string   `json:"expires_at"`
		IssuedAt  string   `json:"issued_at"`
		Methods   []string `json:"methods"`
		Project   nameID   `json:"project"`
		User      struct {
			nameID
			PasswordExpiresAt string `json:"password_expires_at"`
		} `json:"user"`
		Roles   []nameID `json:"roles"`
		Catalog []any    `json:"catalog"`
	} `json:"token"`
}

const iamTimeFormat = "2006-01-02T15:04:05.000000Z"

// createToken answers POST /v3/auth/tokens (password method, project scope).
func (s *Server) createToken(body []byte, now time.Time) resp {
	var req tokenRequest
	if len(body) == 0 {
		return iamErr(400, "1100", "The request body is empty.")
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return iamErr(400, "1100", "The request body is not valid JSON.")
	}
	a := req.Auth
	if a == nil || a.Identity == nil || !slices.Contains(a.Identity.Methods, "password") ||
		a.Identity.Password == nil || a.Identity.Password.User == nil || a.Identity.Password.User.Domain == nil {
		return iamErr(400, "1100", "auth.identity.methods must contain \"password\" and auth.identity.password.user must have name, password and domain.name.")
	}
	u := a.Identity.Password.User
	if u.Name == "" || u.Password == "" || u.Domain.Name == "" {
		return iamErr(400, "1100", "auth.identity.password.user: name, password and domain.name are required.")
	}
	if a.Scope == nil || a.Scope.Project == nil || (a.Scope.Project.Name == "" && a.Scope.Project.ID == "") {
		return iamErr(400, "1100", "auth.scope.project.name or auth.scope.project.id is required (DCS needs a project-scoped token).")
	}
	var user *User
	for i := range s.cfg.Users {
		c := &s.cfg.Users[i]
		if c.Name == u.Name && c.Domain == u.Domain.Name &&
			subtle.ConstantTimeCompare([]byte(c.Password), []byte(u.Password)) == 1 {
			user = c
			break
		}
	}
	if user == nil {
		return iamErr(401, "1101", "The username or password is wrong.")
	}
	p := a.Scope.Project
	if (p.ID != "" && p.ID != s.cfg.ProjectID) || (p.Name != "" && p.Name != s.cfg.ProjectName) {
		return iamErr(400, "1100", "The project in auth.scope does not exist.")
	}
	raw := make([]byte, 384)
	rand.Read(raw)
	tok := "MIIsim" + base64.RawURLEncoding.EncodeToString(raw)
	exp := now.Add(s.cfg.TokenTTL)
	s.mu.Lock()
	s.tokens[tok] = &issuedToken{expires: exp}
	s.mu.Unlock()

	var out tokenBody
	t := &out.Token
	t.ExpiresAt = exp.UTC().Format(iamTimeFormat)
	t.IssuedAt = now.UTC().Format(iamTimeFormat)
	t.Methods = []string{"password"}
	domain := &nameID{ID: "d0" + s.cfg.ProjectID[2:], Name: user.Domain}
	t.Project = nameID{ID: s.cfg.ProjectID, Name: s.cfg.ProjectName, Domain: domain}
	t.User.nameID = nameID{ID: "u0" + s.cfg.ProjectID[2:], Name: user.Name, Domain: domain}
	t.Roles = []nameID{{ID: "0", Name: "op_service"}, {ID: "1", Name: "te_admin"}}
	t.Catalog = []any{}
	return resp{status: 201, body: out, header: http.Header{"X-Subject-Token": {tok}}}
}
