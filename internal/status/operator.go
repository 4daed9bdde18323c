package status

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// Errors of operator actions, for callers that branch.
var (
	// ErrEmpty: a note, RCA, title or author was empty.
	ErrEmpty = errors.New("status: text must not be empty")
	// ErrNotResolved: an RCA is for a resolved incident.
	ErrNotResolved = errors.New("status: the incident is not resolved yet")
	// ErrBadWindow: a maintenance window must end after it starts and
	// name at least one component.
	ErrBadWindow = errors.New("status: a maintenance window must end after it starts and name a component")
)

// maxText bounds operator text.
const maxText = 64 << 10

func checkText(s string) error {
	if strings.TrimSpace(s) == "" {
		return ErrEmpty
	}
	if len(s) > maxText {
		return fmt.Errorf("status: text longer than %d bytes", maxText)
	}
	return nil
}

// AddNote appends an operator's update to an incident's timeline.
func (s *Service) AddNote(ctx context.Context, incidentID, author, message string) (*store.IncidentUpdate, error) {
	if err := errors.Join(checkText(author), checkText(message)); err != nil {
		return nil, err
	}
	u := &store.IncidentUpdate{IncidentID: incidentID, Time: s.now(), Kind: store.UpdateOperator, Message: message, Author: author}
	if err := s.Store.AddIncidentUpdate(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// PublishRCA publishes (or corrects) a resolved incident's root-cause
// analysis. The first publication's time is what counts for the
// deadline; a correction keeps it.
func (s *Service) PublishRCA(ctx context.Context, incidentID, author, text string) error {
	if err := errors.Join(checkText(author), checkText(text)); err != nil {
		return err
	}
	for range 3 {
		in, err := s.Store.GetIncident(ctx, incidentID)
		if err != nil {
			return err
		}
		if in.ResolvedAt.IsZero() {
			return ErrNotResolved
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
		return s.Store.AddIncidentUpdate(ctx, &store.IncidentUpdate{IncidentID: incidentID, Time: now, Kind: store.UpdateRCA, Author: author})
	}
	return fmt.Errorf("publish RCA: %w", store.ErrConflict)
}

// Announce stores a planned maintenance window and returns it with its ID.
func (s *Service) Announce(ctx context.Context, components []string, start, end time.Time, title, message string) (*store.Maintenance, error) {
	if !end.After(start) || len(components) == 0 {
		return nil, ErrBadWindow
	}
	if err := checkText(title); err != nil {
		return nil, err
	}
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	m := &store.Maintenance{ID: id, Components: components, Start: start.UTC(), End: end.UTC(), Title: title, Message: message, CreatedAt: s.now()}
	if err := s.Store.CreateMaintenance(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

// CancelMaintenance withdraws an announcement.
func (s *Service) CancelMaintenance(ctx context.Context, id string) error {
	return s.Store.CancelMaintenance(ctx, id, s.now())
}
