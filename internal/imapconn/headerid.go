package imapconn

import (
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/message"
)

// HeaderID is what a message says of itself without its body: UID, size,
// internal date and Message-ID (one FETCH of HeaderIDItems), as the IMAP
// source's Identities and the IMAP target's Inventory and Find read it.
type HeaderID struct {
	Seq       uint32
	UID       imap.UID // 0 when the response carried none
	Size      int64
	Date      time.Time
	MessageID string
}

// HeaderIDItems are UID, RFC822.SIZE, INTERNALDATE and the Message-ID
// header field (peeked: \Seen unchanged), never BINARY. Fetch them by
// sequence set: go-imap v2.0.0-beta.8 drops a UID FETCH response whose
// literal comes before its UID.
var HeaderIDItems = &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true,
	BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}}}

// ReadHeaderID reads one FETCH response of HeaderIDItems, its literal to
// the end: a header literal cut short is an error (cut), never a message
// without a Message-ID.
func ReadHeaderID(m *imapclient.FetchMessageData, folder string) (h HeaderID, cut bool, err error) {
	h.Seq = m.SeqNum
	var sc message.Scanner
	var lit *FullLiteral
	for it := m.Next(); it != nil; it = m.Next() {
		switch it := it.(type) {
		case imapclient.FetchItemDataUID:
			h.UID = it.UID
		case imapclient.FetchItemDataRFC822Size:
			h.Size = it.Size
		case imapclient.FetchItemDataInternalDate:
			h.Date = it.Time
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil || lit != nil {
				continue
			}
			lit = NewFullLiteral(it.Literal, it.Literal.Size(), func() string {
				return fmt.Sprintf("the Message-ID of message %d (sequence number) of %q", m.SeqNum, folder)
			})
			// The Scanner keeps at most message.MaxHeader octets.
			if _, err := io.Copy(&sc, lit); err != nil {
				return h, true, err
			}
		}
	}
	h.MessageID = sc.MessageID()
	return h, false, nil
}
