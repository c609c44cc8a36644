package migrate

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
)

// The target is the truth, the journal a cache. Before copying into a
// target folder, the engine counts what the folder holds (one STATUS, or a
// directory count) and compares it with what the journal credits to it.
// When the journal cannot account for the folder's content, it reconciles:
// it reads the folder's inventory (one header fetch: receipt, Message-ID,
// internal date, size) and
//
//   - credits a source message the journal does not know as done when a
//     stored message has the same identity (Message-ID and internal date;
//     without a Message-ID, internal date and size), each stored message
//     standing for one source message at most;
//   - copies again a message the journal calls done whose stored copy is
//     gone (and that no other stored message matches).
//
// The journal cannot account for a folder when it credits nothing to it but
// the folder holds messages (a new or lost state directory, the same server
// spelled another way, a target restored from a backup, mail already
// there), when the folder holds fewer messages than the journal credits (it
// was emptied), or when its UIDVALIDITY differs from the receipts' (it was
// deleted and created again). A re-run with nothing new costs one census
// per folder.

// openIntentsInventory is how many open intents in a folder make one
// inventory cheaper than a lookup per message: at least 32, and at least
// one for every openIntentsPerMessage messages the folder holds (a lookup
// is a few round trips, an inventory reads every message's header and
// holds the folder in memory: after a kill -9 in a folder of 400,000
// messages, its 100-odd open intents are 100-odd lookups, not 400,000
// headers). Not at all on a target where a lookup is local (CheapFind), nor
// where a batch of lookups is one round of commands (BatchFind: FindAll
// searches only above the intents' marks; an inventory of a 20,000-message
// folder made a resume into IMAP wait 1.2 s before its first copy, listing
// the whole source folder and reading every stored header).
const (
	openIntentsInventory  = 32
	openIntentsPerMessage = 100
)

// inventoryForOpen reports whether open intents in a target folder of n
// messages are settled with an inventory.
func inventoryForOpen(f target.Features, open, n int) bool {
	return !f.CheapFind && !f.BatchFind && open >= openIntentsInventory && open*openIntentsPerMessage >= n && n > 0
}

// reason says why a folder is reconciled ("" when it is not).
func reconcileReason(c target.Census, credited int, receiptValidity uint32) (reason string, suspect bool) {
	switch {
	case receiptValidity != 0 && c.Validity != 0 && receiptValidity != c.Validity:
		return fmt.Sprintf("the folder was re-created (UIDVALIDITY %d, the journal knows %d)", c.Validity, receiptValidity), true
	case c.Messages < credited:
		return fmt.Sprintf("the folder holds %d messages, fewer than the %d the journal credits", c.Messages, credited), true
	case credited == 0 && c.Messages > 0:
		return fmt.Sprintf("the folder holds %d messages the journal does not account for", c.Messages), false
	}
	return "", false
}

// identity is how a stored copy is recognised without its bytes: by
// Message-ID and internal date, or (without a Message-ID) by internal date
// and size.
type identity struct {
	msgID string
	unix  int64
	size  int64
}

// inventory is what a target folder holds, for one run's reconciliation.
// Source folders mapped onto the same target folder share it, so that one
// stored copy never stands for two source messages.
type inventory struct {
	folder    string
	suspect   bool               // the journal's done records for this folder need checking
	byReceipt map[string]int     // normalised receipt -> index
	byName    map[string]int     // unique part of a Maildir file name -> index
	byID      map[identity][]int // Message-ID and date (stored copies with a Message-ID)
	byDate    map[identity][]int // date and size (every stored copy)
	stored    []target.Stored
	claimed   []bool
}

// receiptKey normalises a receipt for comparison: a Maildir file keeps its
// unique name while its flags (after ":2,") change.
func receiptKey(r string) string {
	if i := strings.Index(r, ":2,"); i >= 0 {
		return r[:i]
	}
	return r
}

func (e *engine) loadInventory(ctx context.Context, inv target.Inventorier, folder string) (*inventory, error) {
	x := &inventory{folder: folder, byReceipt: map[string]int{}, byName: map[string]int{}, byID: map[identity][]int{}, byDate: map[identity][]int{}}
	err := inv.Inventory(ctx, folder, func(s target.Stored) error {
		i := len(x.stored)
		x.stored = append(x.stored, s)
		x.byReceipt[receiptKey(s.Receipt)] = i
		if u, _, _ := strings.Cut(s.Receipt, ","); strings.HasSuffix(u, ".mailferry") {
			x.byName[u] = i
		}
		unix := unixOrZero(s.Date)
		if s.MessageID != "" {
			id := identity{msgID: s.MessageID, unix: unix}
			x.byID[id] = append(x.byID[id], i)
		}
		id := identity{unix: unix, size: s.Size}
		x.byDate[id] = append(x.byDate[id], i)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read what target folder %q holds: %w", folder, err)
	}
	x.claimed = make([]bool, len(x.stored))
	return x, nil
}

// claimReceipt marks the stored copy named receipt as standing for a
// source message; false when the folder holds no such copy.
func (x *inventory) claimReceipt(receipt string) bool {
	i, ok := x.byReceipt[receiptKey(receipt)]
	if !ok || x.claimed[i] {
		return false
	}
	x.claimed[i] = true
	return true
}

// claimName claims the copy stored under the unique name an intent planned
// (a Maildir file mailferry wrote): exact, whatever else looks alike.
func (x *inventory) claimName(name string) (target.Stored, bool) {
	i, ok := x.byName[name]
	if !ok || x.claimed[i] {
		return target.Stored{}, false
	}
	x.claimed[i] = true
	return x.stored[i], true
}

// match finds an unclaimed stored copy with this identity and claims it.
// Without a Message-ID on the source side, the size must match too. With
// one, a copy of the same size is preferred; another size is accepted
// (servers add headers or re-encode them) only when the identity is unique
// among the source messages being matched (shared: two different messages
// with the same Message-ID and date), so that one never takes the other's
// copy.
func (x *inventory) match(id source.Identity, size int64, shared bool) (target.Stored, bool) {
	unix := unixOrZero(id.Date)
	if unix == 0 {
		return target.Stored{}, false
	}
	l := x.byDate[identity{unix: unix, size: size}]
	if id.MessageID != "" {
		l = x.byID[identity{msgID: id.MessageID, unix: unix}]
		for _, i := range l {
			if !x.claimed[i] && x.stored[i].Size == size {
				x.claimed[i] = true
				return x.stored[i], true
			}
		}
		if shared {
			return target.Stored{}, false
		}
	}
	for _, i := range l {
		if !x.claimed[i] {
			x.claimed[i] = true
			return x.stored[i], true
		}
	}
	return target.Stored{}, false
}

// available counts the unclaimed stored copies of this identity and size.
func (x *inventory) available(id source.Identity, size int64) int {
	unix := unixOrZero(id.Date)
	l := x.byDate[identity{unix: unix, size: size}]
	if id.MessageID != "" {
		l = x.byID[identity{msgID: id.MessageID, unix: unix}]
	}
	n := 0
	for _, i := range l {
		if !x.claimed[i] && x.stored[i].Size == size {
			n++
		}
	}
	return n
}

// credits counts the done keys of each source folder name and validity,
// from memory only.
func (e *engine) credits() map[string]map[uint32]int {
	out := map[string]map[uint32]int{}
	e.journalFolders(func(f string, v uint32, done, _ int) {
		if done > 0 {
			if out[f] == nil {
				out[f] = map[uint32]int{}
			}
			out[f][v] += done
		}
	})
	return out
}

// journalFolders calls fn with the number of done and of pending (intent
// only) keys of each source folder name and validity the journal holds,
// counted in memory per key prefix (checkpoint.Journal.Prefixes), without
// building every key: at a million messages this is milliseconds, where
// walking the keys took most of a no-op re-run's start.
func (e *engine) journalFolders(fn func(folder string, validity uint32, done, pending int)) {
	e.j.Prefixes(func(prefix string, done, pending int) bool {
		f, vs, ok := strings.Cut(prefix, "\x1f")
		if !ok || strings.Contains(vs, "\x1f") {
			return true
		}
		v, err := strconv.ParseUint(vs, 10, 32)
		if err == nil {
			fn(f, uint32(v), done, pending)
		}
		return true
	})
}

// identities returns the identity of each message the caller wants, from
// the source's Identifier; without one, from the listing (no Message-ID:
// date and size must match).
func (e *engine) identities(ctx context.Context, s source.Source, f source.Folder, want map[string]bool) (map[string]source.Identity, error) {
	if !s.Features().Identities {
		return nil, nil
	}
	idr := s.(source.Identifier)
	out := make(map[string]source.Identity, len(want))
	err := idr.Identities(ctx, f, func(id source.Identity) error {
		if want[id.ID] {
			out[id.ID] = id
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// listedIdentities are identities from the listing alone.
func listedIdentities(metas []source.Meta, want map[string]bool) map[string]source.Identity {
	out := make(map[string]source.Identity, len(want))
	for _, m := range metas {
		if want[m.ID] {
			out[m.ID] = source.Identity{ID: m.ID, Date: m.Received, Size: m.Size}
		}
	}
	return out
}

// folderInventory decides whether target folder T must be reconciled and,
// if so, reads its inventory (once per run and folder). credited is what
// the journal credits to T.
//
// Open intents (stores of an interrupted run whose outcome is unknown) are
// settled the same way when there are many of them: one inventory instead
// of a lookup (SELECT, SEARCH, FETCH) per message.
func (e *engine) folderInventory(ctx context.Context, inv target.Inventorier, folder string, credited int, receiptValidity uint32, open int) (*inventory, error) {
	if x, ok := e.invs[folder]; ok {
		return x, nil
	}
	c, err := inv.Census(ctx, folder)
	if err != nil {
		return nil, fmt.Errorf("count the messages of target folder %q: %w", folder, err)
	}
	reason, suspect := reconcileReason(c, credited, receiptValidity)
	if reason == "" && inventoryForOpen(e.tfeat, open, c.Messages) {
		reason = fmt.Sprintf("%d stores of an interrupted run have an unknown outcome", open)
	}
	if reason == "" {
		e.invs[folder] = nil
		return nil, nil
	}
	e.log.Info("reconciling with the target folder", "folder", folder, "why", reason)
	x, err := e.loadInventory(ctx, inv, folder)
	if err != nil {
		return nil, err
	}
	x.suspect = suspect
	e.invs[folder] = x
	return x, nil
}
