package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

var _ store.Cluster = (*Store)(nil)

// The registry and the leases (store.Cluster, migration 0002_cluster). Liveness is always computed in SQL
// against clock_timestamp(), the database's clock at the statement, never against a node's own clock.
const (
	nodeCols   = `n.id, n.url, n.public_url, n.media_addr, n.started_at, n.heartbeat_at, n.heartbeat_at > clock_timestamp() - $%d * interval '1 second'`
	qHeartbeat = `INSERT INTO nodes (id, url, public_url, media_addr, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, clock_timestamp())
		ON CONFLICT (id) DO UPDATE SET url = excluded.url, public_url = excluded.public_url, media_addr = excluded.media_addr,
			started_at = excluded.started_at, heartbeat_at = clock_timestamp()`
	qLeaveLeases      = `DELETE FROM stage_owners WHERE node_id = $1`
	qLeaveNode        = `DELETE FROM nodes WHERE id = $1`
	qLockStageRow     = `SELECT 1 FROM stages WHERE id = $1 FOR UPDATE`
	qTakeStage        = `INSERT INTO stage_owners (stage_id, node_id, claimed_at) VALUES ($1, $2, clock_timestamp()) ON CONFLICT (stage_id) DO UPDATE SET node_id = excluded.node_id, claimed_at = excluded.claimed_at`
	qReleaseStage     = `DELETE FROM stage_owners WHERE stage_id = $1 AND node_id = $2`
	qOwnedStages      = `SELECT stage_id FROM stage_owners WHERE node_id = $1 ORDER BY stage_id`
	qDeleteStageOwner = `DELETE FROM stage_owners WHERE stage_id = $1`
	qOrphans          = `SELECT o.stage_id FROM stage_owners o LEFT JOIN nodes n ON n.id = o.node_id
		WHERE n.id IS NULL OR n.heartbeat_at <= clock_timestamp() - $1 * interval '1 second'
		UNION
		SELECT s.id FROM stages s WHERE s.active_session_id <> '' AND NOT EXISTS (SELECT 1 FROM stage_owners o WHERE o.stage_id = s.id)
		ORDER BY 1`
)

var (
	qNodes   = `SELECT ` + fmt.Sprintf(nodeCols, 1) + ` FROM nodes n ORDER BY n.started_at, n.id`
	qNode    = `SELECT ` + fmt.Sprintf(nodeCols, 2) + ` FROM nodes n WHERE n.id = $1`
	qOwnerOf = `SELECT o.node_id, ` + fmt.Sprintf(nodeCols, 2) + ` FROM stage_owners o LEFT JOIN nodes n ON n.id = o.node_id WHERE o.stage_id = $1`
)

func seconds(d time.Duration) float64 { return d.Seconds() }

// Heartbeat implements store.Cluster.
func (s *Store) Heartbeat(ctx context.Context, n store.Node) error {
	if _, err := s.w.Exec(ctx, qHeartbeat, string(n.ID), n.URL, n.PublicURL, n.MediaAddr, n.StartedAt); err != nil {
		return fmt.Errorf("postgres: heartbeat: %w", err)
	}
	return nil
}

// Leave implements store.Cluster.
func (s *Store) Leave(ctx context.Context, id store.NodeID) error {
	return s.update(ctx, func(t *tx) error {
		for _, q := range []string{qLeaveLeases, qLeaveNode} {
			if _, err := t.exec(ctx, q, string(id)); err != nil {
				return fmt.Errorf("postgres: leave: %w", err)
			}
		}
		return nil
	})
}

func scanNode(row scanner, lead ...any) (store.Node, error) {
	var n store.Node
	var id string
	dest := append(lead, &id, &n.URL, &n.PublicURL, &n.MediaAddr, &n.StartedAt, &n.Heartbeat, &n.Alive)
	if err := row.Scan(dest...); err != nil {
		return store.Node{}, err
	}
	n.ID = store.NodeID(id)
	n.StartedAt, n.Heartbeat = n.StartedAt.UTC(), n.Heartbeat.UTC()
	return n, nil
}

// Nodes implements store.Cluster.
func (s *Store) Nodes(ctx context.Context, ttl time.Duration) ([]store.Node, error) {
	rows, err := s.r.Query(ctx, qNodes, seconds(ttl))
	if err != nil {
		return nil, fmt.Errorf("postgres: nodes: %w", err)
	}
	defer rows.Close()
	var out []store.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: nodes: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: nodes: %w", err)
	}
	return out, nil
}

// Node implements store.Cluster.
func (s *Store) Node(ctx context.Context, id store.NodeID, ttl time.Duration) (store.Node, error) {
	n, err := scanNode(s.r.QueryRow(ctx, qNode, string(id), seconds(ttl)))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Node{}, fmt.Errorf("postgres: node %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Node{}, fmt.Errorf("postgres: node %s: %w", id, err)
	}
	return n, nil
}

// ownerOf reads the lease of a stage and its node's row: found is false without a lease; a lease naming a
// node that left the registry has a Node with only its ID and Alive false.
func ownerOf(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, stage ivs.StageID, ttl time.Duration) (n store.Node, found bool, err error) {
	var owner string
	var id, url, public, media *string
	var started, beat *time.Time
	var alive *bool
	err = q.QueryRow(ctx, qOwnerOf, string(stage), seconds(ttl)).Scan(&owner, &id, &url, &public, &media, &started, &beat, &alive)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Node{}, false, nil
	}
	if err != nil {
		return store.Node{}, false, err
	}
	n.ID = store.NodeID(owner)
	if id != nil { // the node's row exists
		n.URL, n.PublicURL, n.MediaAddr = *url, *public, *media
		n.StartedAt, n.Heartbeat, n.Alive = started.UTC(), beat.UTC(), *alive
	}
	return n, true, nil
}

// Claim implements store.Cluster. The stage's row lock serialises the claims on one stage, and the claims
// with the domain's own transactions on it (LockStage takes the same lock).
func (s *Store) Claim(ctx context.Context, stage ivs.StageID, self store.NodeID, ttl time.Duration) (store.Claim, error) {
	var out store.Claim
	err := s.update(ctx, func(t *tx) error {
		out = store.Claim{}
		var one int
		if err := t.tx.QueryRow(ctx, qLockStageRow, string(stage)).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		cur, found, err := ownerOf(ctx, t.tx, stage, ttl)
		if err != nil {
			return err
		}
		if found && (cur.ID == self || cur.Alive) {
			out.Owner = cur
			return nil
		}
		if found {
			out.Previous = cur.ID
		}
		if _, err := t.exec(ctx, qTakeStage, string(stage), string(self)); err != nil {
			return err
		}
		out.Took = true
		out.Owner, _, err = ownerOf(ctx, t.tx, stage, ttl)
		return err
	})
	if err != nil {
		return store.Claim{}, fmt.Errorf("postgres: claim stage %s: %w", stage, err)
	}
	return out, nil
}

// Owner implements store.Cluster.
func (s *Store) Owner(ctx context.Context, stage ivs.StageID, ttl time.Duration) (store.Node, bool, error) {
	n, found, err := ownerOf(ctx, s.r, stage, ttl)
	if err != nil {
		return store.Node{}, false, fmt.Errorf("postgres: owner of stage %s: %w", stage, err)
	}
	if !found || !n.Alive {
		return store.Node{}, false, nil
	}
	return n, true, nil
}

// Release implements store.Cluster.
func (s *Store) Release(ctx context.Context, stage ivs.StageID, self store.NodeID) error {
	if _, err := s.w.Exec(ctx, qReleaseStage, string(stage), string(self)); err != nil {
		return fmt.Errorf("postgres: release stage %s: %w", stage, err)
	}
	return nil
}

// Owned implements store.Cluster.
func (s *Store) Owned(ctx context.Context, id store.NodeID) ([]ivs.StageID, error) {
	return s.stageIDs(ctx, qOwnedStages, string(id))
}

// Orphans implements store.Cluster.
func (s *Store) Orphans(ctx context.Context, ttl time.Duration) ([]ivs.StageID, error) {
	return s.stageIDs(ctx, qOrphans, seconds(ttl))
}

func (s *Store) stageIDs(ctx context.Context, q string, arg any) ([]ivs.StageID, error) {
	rows, err := s.r.Query(ctx, q, arg)
	if err != nil {
		return nil, fmt.Errorf("postgres: leases: %w", err)
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ivs.StageID, error) {
		var id string
		err := r.Scan(&id)
		return ivs.StageID(id), err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: leases: %w", err)
	}
	return ids, nil
}
