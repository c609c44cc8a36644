package pop3

import "github.com/emersion/go-sasl"

// xoauth2Client implements Google's and Microsoft's XOAUTH2 SASL mechanism,
// which go-sasl lacks.
type xoauth2Client struct{ user, token string }

func newXOAuth2Client(user, token string) sasl.Client { return &xoauth2Client{user, token} }

func (x *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers the server's JSON error challenge with an empty response,
// after which the server sends its -ERR.
func (x *xoauth2Client) Next(challenge []byte) ([]byte, error) { return []byte{}, nil }
