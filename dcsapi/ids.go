package dcsapi

import "fmt"

// MaxIDLength bounds every identifier the client puts in a path, query or body.
const MaxIDLength = 64

// ValidateID checks that v is a plausible DCS identifier (project, instance,
// node or job id): 1 to 64 characters from A-Z a-z 0-9 '-' '_'. Such a value
// can never change the request path (no '/', '.', '%', '?' or '#'). kind names
// the field in the error, e.g. "node_id".
func ValidateID(kind, v string) error {
	if v == "" {
		return fmt.Errorf("%s is empty", kind)
	}
	if len(v) > MaxIDLength {
		return fmt.Errorf("%s %.20q... is too long: %d characters, at most %d", kind, v, len(v), MaxIDLength)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			continue
		}
		return fmt.Errorf("%s %q is invalid: character %q at position %d; only letters, digits, '-' and '_' are allowed", kind, v, c, i+1)
	}
	return nil
}

func validateIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := ValidateID(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}
