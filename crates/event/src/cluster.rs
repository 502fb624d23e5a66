//! Which strings may name a cluster: the ingestor checks its configured
//! cluster with it, and store backends turn cluster names into directory and
//! index names, so the rule lives here, below both.

/// Whether `name` may be a cluster name. Backends turn cluster names into
/// directory and index names, so they are kept tame: 1 to 253 bytes of ASCII
/// letters, digits, `.`, `_` and `-`, and neither `.` nor `..`.
pub fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
