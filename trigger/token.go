package trigger

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// Names of the token settings, used in error messages.
const (
	EnvToken     = "TRIGGER_TOKEN"
	EnvTokenFile = "TRIGGER_TOKEN_FILE"
)

// LoadToken returns the trigger API token from the value of TRIGGER_TOKEN
// (env) or from the file named by TRIGGER_TOKEN_FILE (file), trimmed of
// surrounding whitespace. Both empty: "" and no error (the API stays off).
// Both set, an unreadable or empty file, or a token shorter than
// MinTokenLength or containing whitespace: an error naming the setting.
// Pass the file to Options.TokenFile so that NewHandler warns when it is
// readable by every user.
func LoadToken(env, file string) (string, error) {
	switch {
	case env != "" && file != "":
		return "", fmt.Errorf("set either %s or %s, not both", EnvToken, EnvTokenFile)
	case env != "":
		tok := strings.TrimSpace(env)
		return tok, checkToken(EnvToken, tok)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", EnvTokenFile, err)
		}
		tok := strings.TrimSpace(string(b))
		return tok, checkToken(fmt.Sprintf("%s %s", EnvTokenFile, file), tok)
	}
	return "", nil
}

// checkToken never puts the token itself in the error.
func checkToken(field, tok string) error {
	if tok == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if n := len([]rune(tok)); n < MinTokenLength {
		return fmt.Errorf("%s is %d characters long, want at least %d", field, n, MinTokenLength)
	}
	if strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return errors.New(field + " contains whitespace or control characters")
	}
	return nil
}
