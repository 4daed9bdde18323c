package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/store"
)

// Errors of operator actions, for callers that branch.
var (
	// ErrEmpty: a note, RCA, title or author was empty.
	ErrEmpty = errors.New("text must not be empty")
	// ErrNotText: a note, RCA, title, message or author holds a NUL or
	// bytes that are not UTF-8, which a PostgreSQL store cannot keep.
	ErrNotText = errors.New("text must be UTF-8 without NUL characters")
	// ErrNotResolved: an RCA is for a resolved incident. PublishRCA
	// returns it as a *NotResolvedError naming the incident.
	ErrNotResolved = errors.New("the incident is not resolved yet")
	// ErrBadWindow: a maintenance window must end after it starts and
	// name at least one component.
	ErrBadWindow = errors.New("a maintenance window must end after it starts and name a component")
	// ErrPastWindow: a maintenance window is announced ahead, so it
	// cannot start in the past (AnnounceGrace allowed).
	ErrPastWindow = errors.New("a maintenance window cannot start in the past")
	// ErrUnknownComponent: a maintenance window names a component that
	// is neither configured nor measured.
	ErrUnknownComponent = errors.New("no such component")
	// ErrLongWindow: a maintenance window lasts longer than MaxWindow.
	ErrLongWindow = errors.New("a maintenance window is too long")
	// ErrWindowBegun: a maintenance window that has begun, or has
	// ended, cannot be cancelled, since reports would stop excusing the
	// downtime it has already excused. CancelMaintenance returns it
	// wrapped with the window's ID and times.
	ErrWindowBegun = errors.New("a maintenance window that has begun cannot be cancelled")
	// ErrNotUnderWay: only a maintenance window under way can be ended
	// early. EndMaintenance returns it wrapped with the window's ID and
	// times, and what to do instead.
	ErrNotUnderWay = errors.New("the maintenance window is not under way")
)

// NotResolvedError is an RCA refused for an incident still open: it
// names the incident and the components it affects. It is
// ErrNotResolved under errors.Is.
type NotResolvedError struct {
	ID         string
	Components []string
}

func (e *NotResolvedError) Error() string {
	return fmt.Sprintf("incident %s (%s) is not resolved yet", e.ID, strings.Join(e.Components, ", "))
}

func (e *NotResolvedError) Is(target error) bool { return target == ErrNotResolved }

// MaxWindow is the longest maintenance window Announce takes. A window
// opens no incident and excuses down time, so one without a bound (an
// end typed a year off) would silence a component's outages on the
// page and in reports for as long as it lasts. Longer work is announced
// as several windows, each of them on the page.
const MaxWindow = 24 * time.Hour

// AnnounceGrace is how far in the past a maintenance window may start:
// the clocks of the operator's command and of the nodes may differ a
// little, and "from now" takes a moment to type.
const AnnounceGrace = time.Minute

// maxText bounds operator text.
const maxText = 64 << 10

// TextError is operator text refused: Input names which ("author",
// "note", "root-cause analysis", "title" or "message"), Err says why
// (ErrEmpty, ErrNotText, or too long).
type TextError struct {
	Input string
	Err   error
}

func (e *TextError) Error() string {
	return e.Input + ": " + e.Err.Error()
}

func (e *TextError) Unwrap() error { return e.Err }

// checkInput is check's verdict on s, naming it as input.
func checkInput(input string, check func(string) error, s string) error {
	if err := check(s); err != nil {
		return &TextError{Input: input, Err: err}
	}
	return nil
}

// checkText checks text that must be there.
func checkText(s string) error {
	if strings.TrimSpace(s) == "" {
		return ErrEmpty
	}
	return checkOptional(s)
}

// checkOptional checks text that may be empty: bounded, and text every
// store keeps alike.
func checkOptional(s string) error {
	if len(s) > maxText {
		return fmt.Errorf("text longer than %d bytes", maxText)
	}
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return ErrNotText
	}
	return nil
}

// AddNote appends an operator's update to an incident's timeline.
func (s *Service) AddNote(ctx context.Context, incidentID, author, message string) (*store.IncidentUpdate, error) {
	if err := errors.Join(checkInput("author", checkText, author), checkInput("note", checkText, message)); err != nil {
		return nil, err
	}
	u := &store.IncidentUpdate{IncidentID: incidentID, Time: s.now(), Kind: store.UpdateOperator, Message: message, Author: author}
	if err := s.Store.AddIncidentUpdate(ctx, u); err != nil {
		return nil, err
	}
	s.incidents.forget() // this node shows its own change at once
	return u, nil
}

// PublishRCA publishes (or corrects) a resolved incident's root-cause
// analysis. The first publication's time is what counts for the
// deadline; a correction keeps it.
func (s *Service) PublishRCA(ctx context.Context, incidentID, author, text string) error {
	if err := errors.Join(checkInput("author", checkText, author), checkInput("root-cause analysis", checkText, text)); err != nil {
		return err
	}
	for range 3 {
		in, err := s.Store.GetIncident(ctx, incidentID)
		if err != nil {
			return err
		}
		if in.ResolvedAt.IsZero() {
			comps := in.Components
			if len(comps) == 0 {
				comps = []string{in.Component}
			}
			return &NotResolvedError{ID: in.ID, Components: comps}
		}
		now := s.now()
		in.RCA = text
		if in.RCAPublishedAt.IsZero() {
			in.RCAPublishedAt = now
		}
		err = s.Store.UpdateIncident(ctx, in)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		err = s.Store.AddIncidentUpdate(ctx, &store.IncidentUpdate{IncidentID: incidentID, Time: now, Kind: store.UpdateRCA, Author: author})
		s.incidents.forget() // this node shows its own change at once
		return err
	}
	return fmt.Errorf("publish RCA: %w", store.ErrConflict)
}

// Announce stores a planned maintenance window and returns it with its
// ID. A window is announced ahead: one that starts more than
// AnnounceGrace before now is refused (ErrPastWindow), since downtime
// already measured cannot be declared maintenance afterwards; and it
// lasts at most MaxWindow (ErrLongWindow). Its
// components must be known (ErrUnknownComponent): configured, measured
// by this node, or another node ("node:<name>", which may be one yet to
// start).
func (s *Service) Announce(ctx context.Context, components []string, start, end time.Time, title, message string) (*store.Maintenance, error) {
	now := s.now()
	if !end.After(start) || len(components) == 0 {
		return nil, ErrBadWindow
	}
	if d := end.Sub(start); d > MaxWindow {
		return nil, fmt.Errorf("%w: it lasts %v, at most %v; announce longer work as several windows", ErrLongWindow, d, MaxWindow)
	}
	if start.Before(now.Add(-AnnounceGrace)) {
		return nil, fmt.Errorf("%w: it starts at %s, %v ago", ErrPastWindow, start.UTC().Format(time.RFC3339), now.Sub(start).Round(time.Second))
	}
	for _, c := range components {
		if !s.known(c) {
			return nil, fmt.Errorf("%w: %q (known: %s; a node as %s<name>)", ErrUnknownComponent, c, strings.Join(s.knownComponents(), ", "), NodePrefix)
		}
	}
	if err := errors.Join(checkInput("title", checkText, title), checkInput("message", checkOptional, message)); err != nil {
		return nil, err
	}
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	m := &store.Maintenance{ID: id, Components: components, Start: start.UTC(), End: end.UTC(), Title: title, Message: message, CreatedAt: now}
	if err := s.Store.CreateMaintenance(ctx, m); err != nil {
		return nil, err
	}
	s.maintenanceChanged()
	return m, nil
}

// CancelMaintenance withdraws an announcement of a window that has not
// begun. A window under way or ended is refused (ErrWindowBegun): reports
// ignore cancelled windows, so cancelling one would count again, after
// the fact, downtime it has already excused in published figures.
// Cancelling a cancelled window again, begun by now or not, changes
// nothing and is no error. An unknown ID is store.ErrNotFound.
func (s *Service) CancelMaintenance(ctx context.Context, id string) error {
	now := s.now()
	m, err := s.Store.GetMaintenance(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case !m.CancelledAt.IsZero():
		return nil // cancelled before it began: it excused nothing
	case !m.End.IsZero() && !m.End.After(now):
		return fmt.Errorf("%w: maintenance %s ended at %s, and the downtime it excused from %s stays excused",
			ErrWindowBegun, id, m.End.UTC().Format(time.RFC3339), m.Start.UTC().Format(time.RFC3339))
	case !m.Start.After(now):
		return fmt.Errorf("%w: maintenance %s began at %s and is under way; it ends by itself at %s",
			ErrWindowBegun, id, m.Start.UTC().Format(time.RFC3339), m.End.UTC().Format(time.RFC3339))
	}
	// The store cancels only a window still ahead of the time it is
	// given, read again here, so one that begins between the check above
	// and the write is refused too.
	err = s.Store.CancelMaintenance(ctx, id, s.now())
	if err == nil {
		s.maintenanceChanged()
	}
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: maintenance %s began at %s, as it was being cancelled, and is under way; it ends by itself at %s",
			ErrWindowBegun, id, m.Start.UTC().Format(time.RFC3339), m.End.UTC().Format(time.RFC3339))
	}
	return err
}

// EndMaintenance ends a window under way now, when the work it announced
// is done before its end: downtime after now is no longer excused, and
// the page and feed show the new end. A window not yet begun (cancel it
// instead), ended or cancelled is refused (ErrNotUnderWay); the store
// decides in the write itself, so a window that ends by itself meanwhile
// is not lengthened. It returns the window with its new end. An unknown
// ID is store.ErrNotFound.
func (s *Service) EndMaintenance(ctx context.Context, id string) (*store.Maintenance, error) {
	now := s.now()
	err := s.Store.EndMaintenance(ctx, id, now)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, err
	}
	if err == nil {
		s.maintenanceChanged()
	}
	// The window, to return it or to say why it was refused.
	m, gerr := s.Store.GetMaintenance(ctx, id)
	if gerr != nil {
		return nil, errors.Join(err, gerr)
	}
	if err == nil {
		return m, nil
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case !m.CancelledAt.IsZero():
		return nil, fmt.Errorf("%w: maintenance %s was cancelled at %s", ErrNotUnderWay, id, rfc(m.CancelledAt))
	case !m.Start.Before(now):
		return nil, fmt.Errorf("%w: maintenance %s has not begun, it begins at %s; cancel it instead", ErrNotUnderWay, id, rfc(m.Start))
	}
	return nil, fmt.Errorf("%w: maintenance %s ended at %s", ErrNotUnderWay, id, rfc(m.End))
}

// maintenanceChanged drops the page and the reports this node keeps, so
// that a window announced, cancelled or ended through this node's
// service shows on it at once.
func (s *Service) maintenanceChanged() {
	s.summary.forget()
	s.reports.forget()
}

// known reports whether component is one a maintenance window may name:
// described in Components, measured by the monitor, or a node.
// knownComponents are the components, other than nodes, that a
// maintenance window may name, sorted.
func (s *Service) knownComponents() []string {
	var ids []string
	for _, in := range s.Components {
		ids = append(ids, in.ID)
	}
	for _, st := range s.Monitor.Snapshot() {
		ids = append(ids, st.Component)
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return strings.HasPrefix(id, NodePrefix) })
	slices.Sort(ids)
	return slices.Compact(ids)
}

func (s *Service) known(component string) bool {
	if strings.HasPrefix(component, NodePrefix) && len(component) > len(NodePrefix) {
		return true
	}
	if slices.ContainsFunc(s.Components, func(in Info) bool { return in.ID == component }) {
		return true
	}
	return slices.ContainsFunc(s.Monitor.Snapshot(), func(st health.Status) bool { return st.Component == component })
}
