package stage

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/token"
)

// Capability is the model's ParticipantTokenCapability enum.
type Capability string

const (
	CapPublish   Capability = "PUBLISH"
	CapSubscribe Capability = "SUBSCRIBE"
)

// TokenSpec is the model's ParticipantTokenConfiguration. Nil fields take IVS's defaults.
type TokenSpec struct {
	Duration     *int // minutes, default 720
	UserID       string
	Attributes   map[string]string
	Capabilities []Capability // nil: PUBLISH and SUBSCRIBE
}

// ParticipantToken is the model's ParticipantToken.
type ParticipantToken struct {
	ParticipantID  ivs.ParticipantID
	Token          string
	UserID         string
	Attributes     map[string]string
	Duration       int
	Capabilities   []Capability
	ExpirationTime time.Time
}

// DefaultTokenMinutes is IVS's default token duration (12 h).
const DefaultTokenMinutes = 720

// StageView is a stage with its tags, as the API shows it.
type StageView struct {
	ivs.Stage
	ARN  string
	Tags map[string]string
}

// CreateStage makes a stage and, in the same call, its tokens (at most 12, as the model says).
func (s *Service) CreateStage(ctx context.Context, name string, tags map[string]string, specs []TokenSpec) (StageView, []ParticipantToken, error) {
	return s.CreateStageWith(ctx, name, tags, specs, nil)
}

// CreateStageWith is CreateStage with an autoParticipantRecordingConfiguration (nil: not recording).
func (s *Service) CreateStageWith(ctx context.Context, name string, tags map[string]string, specs []TokenSpec, rec *RecordingSpec) (StageView, []ParticipantToken, error) {
	for i, sp := range specs {
		if err := checkAttributes(fmt.Sprintf("participantTokenConfigurations[%d].attributes", i), sp.Attributes); err != nil {
			return StageView{}, nil, err
		}
	}
	st := ivs.Stage{ID: ivs.NewStageID(), Name: name, CreatedAt: s.now()}
	arn := s.cfg.Account.StageARN(st.ID)
	err := s.store.Update(ctx, func(tx store.Tx) error {
		n, err := tx.CountStages(ctx)
		if err != nil {
			return err
		}
		if n >= s.cfg.Quotas.Stages {
			return fmt.Errorf("%w: the quota of %d stages is reached", ErrQuotaExceeded, s.cfg.Quotas.Stages)
		}
		if rec != nil {
			if st.Recording, err = s.useStorageConfiguration(ctx, tx, *rec); err != nil {
				return err
			}
		}
		if err := tx.InsertStage(ctx, st); err != nil {
			return err
		}
		if len(tags) > 0 {
			return tx.MergeTags(ctx, arn, tags)
		}
		return nil
	})
	if err != nil {
		return StageView{}, nil, err
	}
	toks := make([]ParticipantToken, 0, len(specs))
	for _, sp := range specs {
		t, err := s.mintToken(st.ID, sp)
		if err != nil {
			return StageView{}, nil, err
		}
		toks = append(toks, t)
	}
	return StageView{Stage: st, ARN: arn, Tags: nonNil(tags)}, toks, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// GetStage reads a stage by ARN.
func (s *Service) GetStage(ctx context.Context, arn string) (StageView, error) {
	id, err := s.stageID(arn)
	if err != nil {
		return StageView{}, err
	}
	st, err := s.store.GetStage(ctx, id)
	if err != nil {
		return StageView{}, notFound(err, ErrStageNotFound, arn)
	}
	return s.view(ctx, st)
}

func (s *Service) view(ctx context.Context, st ivs.Stage) (StageView, error) {
	arn := s.cfg.Account.StageARN(st.ID)
	tags, err := s.store.Tags(ctx, arn)
	if err != nil {
		return StageView{}, err
	}
	return StageView{Stage: st, ARN: arn, Tags: tags}, nil
}

// UpdateStage renames a stage (name is nil when the request leaves it unchanged).
func (s *Service) UpdateStage(ctx context.Context, arn string, name *string) (StageView, error) {
	return s.UpdateStageWith(ctx, arn, name, nil)
}

// UpdateStageWith is UpdateStage that may also replace the stage's autoParticipantRecordingConfiguration
// (rec nil leaves it unchanged). The model says it "cannot be updated while recording is active": a change
// of it while a participant of the stage is recorded (STARTING, ACTIVE, STOPPING, or in its reconnect
// window) is ErrRecordingActive (ConflictException); the same configuration again is no change.
func (s *Service) UpdateStageWith(ctx context.Context, arn string, name *string, rec *RecordingSpec) (StageView, error) {
	id, err := s.stageID(arn)
	if err != nil {
		return StageView{}, err
	}
	var st ivs.Stage
	err = s.store.Update(ctx, func(tx store.Tx) error {
		st, err = tx.LockStage(ctx, id)
		if err != nil {
			return notFound(err, ErrStageNotFound, arn)
		}
		if name != nil {
			st.Name = *name
		}
		if rec != nil {
			next, err := s.useStorageConfiguration(ctx, tx, *rec)
			if err != nil {
				return err
			}
			if next != st.Recording {
				active, err := s.recordingActiveOn(ctx, tx, st)
				if err != nil {
					return err
				}
				if active {
					return fmt.Errorf("%w: autoParticipantRecordingConfiguration cannot be updated while recording is active", ErrRecordingActive)
				}
			}
			st.Recording = next
		}
		return tx.UpdateStage(ctx, st)
	})
	if err != nil {
		return StageView{}, err
	}
	return s.view(ctx, st)
}

// ListStages returns a page of stages, oldest first.
func (s *Service) ListStages(ctx context.Context, p store.Page) ([]StageView, error) {
	sts, err := s.store.ListStages(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]StageView, 0, len(sts))
	for _, st := range sts {
		v, err := s.view(ctx, st)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// DeleteStage disconnects everyone on the stage, ends its session and deletes it with its history.
func (s *Service) DeleteStage(ctx context.Context, arn string) error {
	id, err := s.stageID(arn)
	if err != nil {
		return err
	}
	if _, err := s.store.GetStage(ctx, id); err != nil {
		return notFound(err, ErrStageNotFound, arn)
	}
	// A stage live on another node is deleted there, where its participants can be told and disconnected.
	peer, release, err := s.place(ctx, id)
	if err != nil {
		return notFound(err, ErrStageNotFound, arn)
	}
	defer release()
	if peer != nil {
		return peer.DeleteStage(ctx, arn)
	}
	// The deletion happens under the stage's live lock, so nobody can join between the eviction and it.
	return s.evictStage(ctx, id, CloseStageDeleted, func() error {
		return s.store.Update(ctx, func(tx store.Tx) error {
			if _, err := tx.LockStage(ctx, id); err != nil {
				return notFound(err, ErrStageNotFound, arn)
			}
			if err := tx.DeleteStage(ctx, id); err != nil {
				return err
			}
			return tx.DeleteTags(ctx, arn)
		})
	})
}

// CreateParticipantToken mints a token for an existing stage.
func (s *Service) CreateParticipantToken(ctx context.Context, stageARN string, sp TokenSpec) (ParticipantToken, error) {
	id, err := s.stageID(stageARN)
	if err != nil {
		return ParticipantToken{}, err
	}
	if err := checkAttributes("attributes", sp.Attributes); err != nil {
		return ParticipantToken{}, err
	}
	if _, err := s.store.GetStage(ctx, id); err != nil {
		return ParticipantToken{}, notFound(err, ErrStageNotFound, stageARN)
	}
	return s.mintToken(id, sp)
}

func (s *Service) mintToken(id ivs.StageID, sp TokenSpec) (ParticipantToken, error) {
	minutes := DefaultTokenMinutes
	if sp.Duration != nil {
		minutes = *sp.Duration
	}
	caps := sp.Capabilities
	if caps == nil {
		caps = []Capability{CapPublish, CapSubscribe}
	}
	var c token.Capabilities
	for _, cp := range caps {
		switch cp {
		case CapPublish:
			c.AllowPublish = true
		case CapSubscribe:
			c.AllowSubscribe = true
		}
	}
	// Whole seconds: exp and iat travel as integers, and expirationTime must agree with exp.
	now := s.now().Truncate(time.Second)
	exp := now.Add(time.Duration(minutes) * time.Minute)
	pid := ivs.NewParticipantID()
	raw, err := s.signer.Sign(token.Claims{
		ExpiresAt: exp, IssuedAt: now, ParticipantID: string(pid), UserID: sp.UserID,
		Resource: s.cfg.Account.StageARN(id), Topic: string(id),
		EventsURL: s.cfg.EventsURL, WhipURL: s.cfg.WHIPURL,
		Capabilities: c, Attributes: sp.Attributes, Version: "1.0",
	})
	if err != nil {
		return ParticipantToken{}, fmt.Errorf("stage: sign token: %w", err)
	}
	return ParticipantToken{
		ParticipantID: pid, Token: raw, UserID: sp.UserID, Attributes: nonNil(sp.Attributes),
		Duration: minutes, Capabilities: caps, ExpirationTime: exp,
	}, nil
}

// Sessions and participants (reads).

func (s *Service) GetSession(ctx context.Context, stageARN string, id ivs.SessionID) (ivs.Session, error) {
	sid, err := s.stageID(stageARN)
	if err != nil {
		return ivs.Session{}, err
	}
	if _, err := s.store.GetStage(ctx, sid); err != nil {
		return ivs.Session{}, notFound(err, ErrStageNotFound, stageARN)
	}
	sess, err := s.store.GetSession(ctx, sid, id)
	if err != nil {
		return ivs.Session{}, notFound(err, ErrSessionNotFound, string(id))
	}
	return sess, nil
}

// ListSessions pages a stage's sessions, newest first. A stage that does not exist has none.
func (s *Service) ListSessions(ctx context.Context, stageARN string, p store.Page) ([]ivs.Session, error) {
	sid, ok := s.cfg.Account.StageIDFromARN(stageARN)
	if !ok {
		return nil, nil
	}
	return s.store.ListSessions(ctx, sid, p)
}

func (s *Service) GetParticipant(ctx context.Context, stageARN string, session ivs.SessionID, id ivs.ParticipantID) (ivs.Participant, error) {
	sid, err := s.stageID(stageARN)
	if err != nil {
		return ivs.Participant{}, err
	}
	p, err := s.store.GetParticipant(ctx, sid, session, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			if _, serr := s.store.GetStage(ctx, sid); serr != nil {
				return ivs.Participant{}, notFound(serr, ErrStageNotFound, stageARN)
			}
			if _, serr := s.store.GetSession(ctx, sid, session); serr != nil {
				return ivs.Participant{}, notFound(serr, ErrSessionNotFound, string(session))
			}
		}
		return ivs.Participant{}, notFound(err, ErrParticipantNotFound, string(id))
	}
	return p, nil
}

// ParticipantQuery is ListParticipants' filter (filterByRecordingState is store.ParticipantFilter's
// RecordingState).
type ParticipantQuery struct {
	store.ParticipantFilter
	RecordingState string
}

// ListParticipants pages a session's participants by firstJoinTime, as the model's ParticipantSummary. The
// model gives this operation no ResourceNotFoundException: an unknown stage or session has no participants.
func (s *Service) ListParticipants(ctx context.Context, stageARN string, session ivs.SessionID, q ParticipantQuery, p store.Page) ([]store.ParticipantSummary, error) {
	sid, ok := s.cfg.Account.StageIDFromARN(stageARN)
	if !ok {
		return nil, nil
	}
	f := q.ParticipantFilter
	if q.RecordingState != "" {
		f.RecordingState = ivs.RecordingState(q.RecordingState)
	}
	return s.store.ListParticipantSummaries(ctx, sid, session, f, p)
}

// ListEvents pages a participant's events in the order they happened.
func (s *Service) ListEvents(ctx context.Context, stageARN string, session ivs.SessionID, id ivs.ParticipantID, p store.Page) ([]ivs.Event, error) {
	sid, ok := s.cfg.Account.StageIDFromARN(stageARN)
	if !ok {
		return nil, nil
	}
	return s.store.ListEvents(ctx, sid, session, id, p)
}

// Public keys.

// PublicKeyView is a public key with its ARN and tags.
type PublicKeyView struct {
	ivs.PublicKey
	ARN  string
	Tags map[string]string
}

// ImportPublicKey stores a customer's P-384 public key for self-signed tokens.
func (s *Service) ImportPublicKey(ctx context.Context, material, name string, tags map[string]string) (PublicKeyView, error) {
	pub, err := token.ParsePublicKeyPEM(material)
	if err != nil {
		return PublicKeyView{}, fmt.Errorf("%w: publicKeyMaterial: %v", ErrInvalid, err)
	}
	k := ivs.PublicKey{ID: ivs.NewPublicKeyID(), Name: name, Material: material, Fingerprint: token.Fingerprint(pub), CreatedAt: s.now()}
	arn := s.cfg.Account.PublicKeyARN(k.ID)
	err = s.store.Update(ctx, func(tx store.Tx) error {
		// One key material is imported once: a second import would make two ARNs for the same signer.
		keys, err := tx.ListPublicKeys(ctx, store.Page{Limit: s.cfg.Quotas.PublicKeys + 1000})
		if err != nil {
			return err
		}
		for _, other := range keys {
			if other.Fingerprint == k.Fingerprint {
				return fmt.Errorf("%w: this public key material is already imported as %s", ErrConflict, s.cfg.Account.PublicKeyARN(other.ID))
			}
		}
		if len(keys) >= s.cfg.Quotas.PublicKeys {
			return fmt.Errorf("%w: the quota of %d public keys is reached", ErrQuotaExceeded, s.cfg.Quotas.PublicKeys)
		}
		if err := tx.InsertPublicKey(ctx, k); err != nil {
			return err
		}
		if len(tags) > 0 {
			return tx.MergeTags(ctx, arn, tags)
		}
		return nil
	})
	if err != nil {
		return PublicKeyView{}, err
	}
	return PublicKeyView{PublicKey: k, ARN: arn, Tags: nonNil(tags)}, nil
}

func (s *Service) publicKeyID(arn string) (ivs.PublicKeyID, error) {
	id, ok := s.cfg.Account.PublicKeyIDFromARN(arn)
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrPublicKeyNotFound, arn)
	}
	return id, nil
}

func (s *Service) GetPublicKey(ctx context.Context, arn string) (PublicKeyView, error) {
	id, err := s.publicKeyID(arn)
	if err != nil {
		return PublicKeyView{}, err
	}
	k, err := s.store.GetPublicKey(ctx, id)
	if err != nil {
		return PublicKeyView{}, notFound(err, ErrPublicKeyNotFound, arn)
	}
	tags, err := s.store.Tags(ctx, arn)
	if err != nil {
		return PublicKeyView{}, err
	}
	return PublicKeyView{PublicKey: k, ARN: arn, Tags: tags}, nil
}

func (s *Service) ListPublicKeys(ctx context.Context, p store.Page) ([]PublicKeyView, error) {
	keys, err := s.store.ListPublicKeys(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]PublicKeyView, 0, len(keys))
	for _, k := range keys {
		arn := s.cfg.Account.PublicKeyARN(k.ID)
		tags, err := s.store.Tags(ctx, arn)
		if err != nil {
			return nil, err
		}
		out = append(out, PublicKeyView{PublicKey: k, ARN: arn, Tags: tags})
	}
	return out, nil
}

// DeletePublicKey deletes a key; tokens it signed stop verifying at once.
func (s *Service) DeletePublicKey(ctx context.Context, arn string) error {
	id, err := s.publicKeyID(arn)
	if err != nil {
		return err
	}
	err = s.store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.GetPublicKey(ctx, id); err != nil {
			return notFound(err, ErrPublicKeyNotFound, arn)
		}
		if err := tx.DeletePublicKey(ctx, id); err != nil {
			return err
		}
		return tx.DeleteTags(ctx, arn)
	})
	if err != nil {
		return err
	}
	s.keyMu.Lock()
	delete(s.keyCache, arn)
	s.keyMu.Unlock()
	return nil
}

// VerificationKey implements token.KeyLookup: the server's own key by its kid, an imported key by its ARN.
func (s *Service) VerificationKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	if kid == s.signer.KeyID() {
		return s.signer.PublicKey(), nil
	}
	id, ok := s.cfg.Account.PublicKeyIDFromARN(kid)
	if !ok {
		return nil, token.ErrUnknownKey
	}
	// The cache is only a parse cache: existence is read from the store every time, so a key deleted
	// through another node stops verifying there too.
	k, err := s.store.GetPublicKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, token.ErrUnknownKey
	}
	if err != nil {
		return nil, err
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if pub, ok := s.keyCache[kid]; ok {
		return pub, nil
	}
	pub, err := token.ParsePublicKeyPEM(k.Material)
	if err != nil {
		return nil, fmt.Errorf("stage: stored public key %s: %w", kid, err)
	}
	s.keyCache[kid] = pub
	return pub, nil
}

var _ token.KeyLookup = (*Service)(nil)

// Tags. openstage's taggable resources are its stages, public keys and storage configurations.

func (s *Service) resourceExists(ctx context.Context, r store.Reader, arn string) error {
	typ, id, ok := s.cfg.Account.ParseARN(arn)
	if ok {
		var err error
		switch typ {
		case ivs.ResourceStage:
			_, err = r.GetStage(ctx, ivs.StageID(id))
		case ivs.ResourcePublicKey:
			_, err = r.GetPublicKey(ctx, ivs.PublicKeyID(id))
		case ivs.ResourceStorageConfiguration:
			_, err = r.GetStorageConfiguration(ctx, ivs.StorageConfigurationID(id))
		default:
			err = store.ErrNotFound
		}
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return fmt.Errorf("%w: %s", ErrResourceNotFound, arn)
}

// maxTags is the model's Tags map limit, which also bounds a resource's tags after a merge.
const maxTags = 50

func (s *Service) TagResource(ctx context.Context, arn string, tags map[string]string) error {
	return s.store.Update(ctx, func(tx store.Tx) error {
		if err := s.resourceExists(ctx, tx, arn); err != nil {
			return err
		}
		cur, err := tx.Tags(ctx, arn)
		if err != nil {
			return err
		}
		merged := cloneMap(cur)
		for k, v := range tags {
			merged[k] = v
		}
		if len(merged) > maxTags {
			return fmt.Errorf("%w: a resource can have at most %d tags; this would make %d", ErrInvalid, maxTags, len(merged))
		}
		return tx.MergeTags(ctx, arn, tags)
	})
}

func (s *Service) UntagResource(ctx context.Context, arn string, keys []string) error {
	return s.store.Update(ctx, func(tx store.Tx) error {
		if err := s.resourceExists(ctx, tx, arn); err != nil {
			return err
		}
		return tx.RemoveTags(ctx, arn, keys)
	})
}

func (s *Service) ListTags(ctx context.Context, arn string) (map[string]string, error) {
	if err := s.resourceExists(ctx, s.store, arn); err != nil {
		return nil, err
	}
	return s.store.Tags(ctx, arn)
}
