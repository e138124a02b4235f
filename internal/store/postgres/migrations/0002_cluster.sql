-- 0002_cluster: the registry of nodes sharing this database, and the stage leases (docs/DESIGN.md §6.2).
--
-- Unlike the other tables' times, a heartbeat is a timestamptz the database stamps itself (clock_timestamp()):
-- a node's liveness is judged by this one clock, so the nodes' own clocks need not agree.

CREATE TABLE nodes (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    url          TEXT COLLATE "C" NOT NULL, -- how the other nodes reach it (--node-url)
    public_url   TEXT COLLATE "C" NOT NULL, -- what its clients are given (--public-url)
    media_addr   TEXT COLLATE "C" NOT NULL,
    started_at   TIMESTAMPTZ      NOT NULL,
    heartbeat_at TIMESTAMPTZ      NOT NULL
);

-- One row per stage that has an owner: the node holding its live state. A lease lasts as long as its node's
-- heartbeat; a row naming a dead node is an orphan for a surviving node to end and take over.
CREATE TABLE stage_owners (
    stage_id   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    node_id    TEXT COLLATE "C" NOT NULL,
    claimed_at TIMESTAMPTZ      NOT NULL
);
CREATE INDEX stage_owners_by_node ON stage_owners (node_id);

-- For operators: every node, whether it is alive by the default --node-ttl (10 s), and the stages it owns.
CREATE VIEW cluster_nodes AS
SELECT n.id AS node_id, n.url, n.public_url, n.media_addr, n.started_at, n.heartbeat_at,
       n.heartbeat_at > clock_timestamp() - interval '10 seconds' AS alive,
       (SELECT count(*) FROM stage_owners o WHERE o.node_id = n.id) AS owned_stages,
       ARRAY(SELECT o.stage_id FROM stage_owners o WHERE o.node_id = n.id ORDER BY o.stage_id) AS stages
FROM nodes n;
