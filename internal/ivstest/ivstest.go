// Package ivstest holds what tests in several packages do to read openstage back, through the AWS SDK for Go
// or the stage domain: a participant's events as short strings, the wait for a stage's session to end. Only
// tests import it.
package ivstest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/ivs"
)

// Event writes an event as NAME, NAME>remote participant, and :ERROR_CODE when it has one, so that a
// participant's history compares as a list of strings.
func Event(e types.Event) string {
	s := string(e.Name)
	if e.RemoteParticipantId != nil {
		s += ">" + *e.RemoteParticipantId
	}
	if e.ErrorCode != "" {
		s += ":" + string(e.ErrorCode)
	}
	return s
}

// DomainEvent writes an event of the stage domain (or the store) as Event writes the API's.
func DomainEvent(e ivs.Event) string {
	s := string(e.Name)
	if e.RemoteParticipantID != "" {
		s += ">" + string(e.RemoteParticipantID)
	}
	if e.ErrorCode != "" {
		s += ":" + string(e.ErrorCode)
	}
	return s
}

// Events returns a participant's events (the first page, up to 50) written by Event.
func Events(ctx context.Context, t testing.TB, c *ivsrealtime.Client, arn *string, session, participant string) []string {
	t.Helper()
	out, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: arn, SessionId: &session,
		ParticipantId: &participant})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, len(out.Events))
	for _, e := range out.Events {
		got = append(got, Event(e))
	}
	return got
}

// WaitSessionEnded polls until the stage has no active session and its newest of sessions sessions has
// ended, and returns that session's id. It fails the test when ctx ends first.
func WaitSessionEnded(ctx context.Context, t testing.TB, c *ivsrealtime.Client, arn *string, sessions int) string {
	t.Helper()
	var id string
	Eventually(t, Until(ctx, time.Minute), 50*time.Millisecond, func() error {
		st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
		if err != nil {
			t.Fatal(err)
		}
		ss, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: arn})
		if err != nil {
			t.Fatal(err)
		}
		if st.Stage.ActiveSessionId != nil || len(ss.StageSessions) != sessions || ss.StageSessions[0].EndTime == nil {
			return fmt.Errorf("session %d did not end (%d sessions, active %v)", sessions, len(ss.StageSessions),
				aws.ToString(st.Stage.ActiveSessionId))
		}
		id = *ss.StageSessions[0].SessionId
		return nil
	})
	return id
}

// Buffer is a bytes.Buffer that several goroutines may write to (a subprocess's output, a server's log).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
