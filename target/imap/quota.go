package imap

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Quota asks the server for the storage quota of INBOX (RFC 9208
// GETQUOTAROOT) and returns its usage and limit in bytes. ok is false when
// the server has no QUOTA extension or INBOX has no storage limit.
func (t *Target) Quota(ctx context.Context) (used, limit int64, ok bool, err error) {
	c, err := t.conn(ctx)
	if err != nil {
		return 0, 0, false, err
	}
	if !c.Caps().Has(imap.CapQuota) {
		return 0, 0, false, nil
	}
	var data []imapclient.QuotaData
	err = t.short(ctx, "GETQUOTAROOT INBOX", func(c *imapclient.Client) error {
		var err error
		data, err = c.GetQuotaRoot(t.names.ToServer("INBOX")).Wait()
		return err
	})
	if err != nil {
		return 0, 0, false, err
	}
	// Several roots may apply: the tightest free space counts.
	free := int64(-1)
	for _, d := range data {
		r, has := d.Resources[imap.QuotaResourceStorage]
		if !has || r.Limit <= 0 {
			continue
		}
		// STORAGE is in units of 1024 octets.
		u, l := r.Usage*1024, r.Limit*1024
		if f := l - u; free < 0 || f < free {
			free, used, limit, ok = f, u, l, true
		}
	}
	return used, limit, ok, nil
}

// plannedCaps are the capabilities that change how a migration behaves.
var plannedCaps = []imap.Cap{
	imap.CapUIDPlus, imap.CapSpecialUse, imap.CapCreateSpecialUse, imap.CapQuota,
	imap.CapLiteralPlus, imap.CapLiteralMinus, imap.CapMultiAppend, imap.CapAppendLimit,
	imap.CapMove, imap.CapCondStore, imap.CapUTF8Accept, imap.CapIMAP4rev2, imap.CapNamespace,
	imap.CapIdle,
}

// Capabilities returns the capabilities of the server that matter to a
// migration (UIDPLUS, SPECIAL-USE, QUOTA, LITERAL+, APPENDLIMIT, …), in a
// fixed order, and the SASL mechanisms it offers (AUTH=…).
func (t *Target) Capabilities(ctx context.Context) (caps []string, err error) {
	c, err := t.conn(ctx)
	if err != nil {
		return nil, err
	}
	set := c.Caps()
	for _, cp := range plannedCaps {
		if set.Has(cp) {
			s := string(cp)
			if cp == imap.CapAppendLimit {
				if l, ok := set.AppendLimit(); ok && l != nil {
					s += "=" + strconv.FormatUint(uint64(*l), 10)
				}
			}
			caps = append(caps, s)
		}
	}
	mechs := set.AuthMechanisms()
	slices.Sort(mechs)
	for _, m := range mechs {
		caps = append(caps, "AUTH="+strings.ToUpper(m))
	}
	return caps, nil
}
