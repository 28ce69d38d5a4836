//! The checks `Config::validate` runs, one group of sections at a time: each names the
//! first key whose value does not hold and why.

use super::*;
use gavel_kernel::sessions::MAX_SESSIONS_PER_BIDDER_LIMIT;

impl Config {
    pub(super) fn validate_node_and_listen(&self) -> Result<(), ConfigError> {
        let (node, listen) = (&self.node, &self.listen);
        let mut distinct = BTreeSet::from([listen.public, listen.control, listen.peer]);
        let three_apart = distinct.len() == 3;
        let events_apart = listen.events.is_none_or(|events| distinct.insert(events));
        // The pages reach the events listener on the host they reached the public one.
        let events_beside_public = listen
            .events
            .is_none_or(|events| events.ip() == listen.public.ip() || events.ip().is_unspecified());
        all_hold(&[
            ("node.id", node.id >= 1, AT_LEAST_ONE),
            ("node.name", !node.name.trim().is_empty(), NOT_EMPTY),
            (
                "node.data_dir",
                !node.data_dir.as_os_str().is_empty(),
                NOT_EMPTY,
            ),
            ("listen.public", listen.public.port() != 0, FIXED_PORT),
            ("listen.control", listen.control.port() != 0, FIXED_PORT),
            ("listen.peer", listen.peer.port() != 0, FIXED_PORT),
            (
                "listen",
                three_apart,
                "public, control and peer must be three different addresses",
            ),
            (
                "listen.events",
                listen.events.is_none_or(|events| events.port() != 0),
                FIXED_PORT,
            ),
            (
                "listen.events",
                events_apart,
                "must differ from public, control and peer",
            ),
            (
                "listen.events",
                events_beside_public,
                "must bind the public listener's address (or all addresses): the pages reach it on their own host",
            ),
            (
                "http.event_workers",
                (1..=64).contains(&self.http.event_workers),
                "must be between 1 and 64",
            ),
        ])
    }

    pub(super) fn validate_members(&self) -> Result<(), ConfigError> {
        let members = &self.cluster.members;
        let (mut ids, mut peers) = (BTreeSet::new(), BTreeSet::new());
        for (index, member) in members.iter().enumerate() {
            let key = |field: &str| format!("cluster.members[{index}].{field}");
            require(
                ids.insert(member.id),
                key("id"),
                format!("repeats id {}", member.id),
            )?;
            require(
                peers.insert(member.peer),
                key("peer"),
                format!("repeats {}", member.peer),
            )?;
            let fields = [
                ("id", member.id >= 1, AT_LEAST_ONE),
                ("name", !member.name.trim().is_empty(), NOT_EMPTY),
                ("peer", member.peer.port() != 0, FIXED_PORT),
                ("public_url", is_http_url(&member.public_url), HTTP_URL),
                ("control_url", is_http_url(&member.control_url), HTTP_URL),
            ];
            if let Some((field, _, problem)) = fields.iter().find(|(_, holds, _)| !holds) {
                return Err(ConfigError::invalid(key(field), *problem));
            }
        }
        let this_node = format!("must include this node (node.id = {})", self.node.id);
        require(ids.contains(&self.node.id), "cluster.members", this_node)?;
        let has_voter = members.iter().any(|member| member.role == Role::Voter);
        require(
            has_voter,
            "cluster.members",
            "must have a member with role = \"voter\"",
        )
    }

    pub(super) fn validate_security(&self) -> Result<(), ConfigError> {
        let security = &self.security;
        let long_enough = |secret: &Option<String>| {
            secret
                .as_ref()
                .is_none_or(|secret| secret.chars().count() >= MIN_SECRET_CHARS)
        };
        all_hold(&[
            (
                "security.admin_token",
                long_enough(&security.admin_token),
                TOO_SHORT,
            ),
            (
                "security.operator_name",
                !security.operator_name.trim().is_empty(),
                NOT_EMPTY,
            ),
        ])?;
        self.validate_cluster_secret()?;
        self.validate_receipt_key()?;
        self.validate_spool_key()?;
        self.validate_operators()
    }

    pub(super) fn validate_raft(&self) -> Result<(), ConfigError> {
        let raft = &self.raft;
        let (heartbeat, min, max) = (
            raft.heartbeat_interval_ms,
            raft.election_timeout_min_ms,
            raft.election_timeout_max_ms,
        );
        require(heartbeat >= 1, "raft.heartbeat_interval_ms", AT_LEAST_ONE)?;
        let min_problem =
            format!("must be greater than raft.heartbeat_interval_ms ({min} <= {heartbeat})");
        require(min > heartbeat, "raft.election_timeout_min_ms", min_problem)?;
        let max_problem =
            format!("must be greater than raft.election_timeout_min_ms ({max} <= {min})");
        require(max > min, "raft.election_timeout_max_ms", max_problem)?;
        require(
            raft.snapshot_every_entries >= 1,
            "raft.snapshot_every_entries",
            AT_LEAST_ONE,
        )
    }

    pub(super) fn validate_backup(&self) -> Result<(), ConfigError> {
        all_hold(&[
            (
                "backup.every_ms",
                (1_000..=604_800_000).contains(&self.backup.every_ms),
                "must be between 1000 and 604800000",
            ),
            (
                "backup.keep",
                (1..=10_000).contains(&self.backup.keep),
                "must be between 1 and 10000",
            ),
            (
                "backup.dir",
                self.backup
                    .dir
                    .as_ref()
                    .is_none_or(|dir| !dir.as_os_str().is_empty()),
                NOT_EMPTY,
            ),
        ])
    }

    pub(super) fn validate_timers_and_limits(&self) -> Result<(), ConfigError> {
        let (janitor, pool, http) = (&self.janitor, &self.pool, &self.http);
        all_hold(&[
            ("sessions.ttl_ms", self.sessions.ttl_ms >= 1, AT_LEAST_ONE),
            (
                "sessions.max_sessions_per_bidder",
                (1..=MAX_SESSIONS_PER_BIDDER_LIMIT)
                    .contains(&self.sessions.max_sessions_per_bidder),
                "must be between 1 and 1000",
            ),
            (
                "janitor.interval_ms",
                janitor.interval_ms >= 1,
                AT_LEAST_ONE,
            ),
            (
                "janitor.request_retention_ms",
                janitor.request_retention_ms >= 1,
                AT_LEAST_ONE,
            ),
            (
                "pool.mailbox_capacity",
                pool.mailbox_capacity >= 1,
                AT_LEAST_ONE,
            ),
            ("pool.event_buffer", pool.event_buffer >= 1, AT_LEAST_ONE),
            (
                "cluster.check_interval_ms",
                (10..=60_000).contains(&self.cluster.check_interval_ms),
                "must be between 10 and 60000",
            ),
            (
                "cluster.down_after_misses",
                (1..=1_000).contains(&self.cluster.down_after_misses),
                "must be between 1 and 1000",
            ),
            (
                "cluster.max_clock_skew_ms",
                (1..=60_000).contains(&self.cluster.max_clock_skew_ms),
                "must be between 1 and 60000",
            ),
            ("http.workers", http.workers >= 1, AT_LEAST_ONE),
            (
                "exchange.interval_ms",
                (10..=600_000).contains(&self.exchange.interval_ms),
                "must be between 10 and 600000",
            ),
            (
                "exchange.key_retention_ms",
                self.exchange.key_retention_ms >= 60_000,
                "must be 60000 or more",
            ),
            (
                "exchange.dir",
                self.exchange
                    .dir
                    .as_ref()
                    .is_none_or(|dir| !dir.as_os_str().is_empty()),
                NOT_EMPTY,
            ),
            (
                "http.max_connections",
                http.max_connections >= 1,
                AT_LEAST_ONE,
            ),
            (
                "archive.chunk_auctions",
                (1..=MAX_CHUNK_AUCTIONS).contains(&self.archive.chunk_auctions),
                "must be between 1 and 10000",
            ),
            (
                "http.body_read_timeout_ms",
                (100..=600_000).contains(&http.body_read_timeout_ms),
                "must be between 100 and 600000",
            ),
        ])
    }
}

pub(super) const AT_LEAST_ONE: &str = "must be 1 or more";
pub(super) const NOT_EMPTY: &str = "must not be empty";
pub(super) const FIXED_PORT: &str =
    "must name a port other than 0: clients and peers need a fixed one";
pub(super) const HTTP_URL: &str = "must start with http:// or https://";
pub(super) const TOO_SHORT: &str = "must be 16 characters or more";
const _: () = assert!(MIN_SECRET_CHARS == 16, "TOO_SHORT names MIN_SECRET_CHARS");
const _: () = assert!(
    MAX_CHUNK_AUCTIONS == 10_000,
    "the archive.chunk_auctions message names the chunk limit"
);
const _: () = assert!(
    MAX_SESSIONS_PER_BIDDER_LIMIT == 1_000,
    "the sessions.max_sessions_per_bidder message names the kernel's limit"
);

/// The first rule that does not hold, as `(key, holds, problem)`.
pub(super) fn all_hold(rules: &[(&str, bool, &str)]) -> Result<(), ConfigError> {
    match rules.iter().find(|(_, holds, _)| !holds) {
        Some((key, _, problem)) => Err(ConfigError::invalid(*key, *problem)),
        None => Ok(()),
    }
}

pub(super) fn require(
    holds: bool,
    key: impl Into<String>,
    problem: impl Into<String>,
) -> Result<(), ConfigError> {
    if holds {
        Ok(())
    } else {
        Err(ConfigError::invalid(key, problem))
    }
}

pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|host_and_path| !host_and_path.is_empty())
}
