//! Sign-in sessions: the user's bearer token kept on the server, the
//! browser holding only a random session id in an `HttpOnly; Secure;
//! SameSite=Strict` cookie, so page scripts never see the token.
//!
//! Each session also has a CSRF token, handed to the page by `GET
//! /api/v1/session` and required in the `X-CSRF-Token` header of every
//! state-changing request (with the Origin check in `api`), so that a page
//! of another site cannot act with the user's cookie.
//!
//! The table is bounded (`max_sessions`); expired sessions are dropped
//! when met and swept when the table is full.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore as _;

/// The cookie that carries the session id.
pub const COOKIE: &str = "auditrail_session";

/// One signed-in user.
#[derive(Clone)]
pub struct Session {
    /// The bearer token every call is made with.
    pub token: String,
    /// What state-changing requests must echo in `X-CSRF-Token`.
    pub csrf: String,
    expires: Instant,
}

impl std::fmt::Debug for Session {
    // The token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"***")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The table is full of live sessions.
#[derive(Debug, thiserror::Error)]
#[error("the console holds its most sessions ({0}); try again when one ends")]
pub struct Full(pub usize);

/// The sessions of one console.
#[derive(Debug)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    max: usize,
}

/// Sets the sessions gauge.
fn count(sessions: usize) {
    metrics::gauge!("console_sessions").set(f64::from(u32::try_from(sessions).unwrap_or(u32::MAX)));
}

/// 32 random bytes as hex.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// An empty table of sessions lasting `ttl`, at most `max` at once.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            ttl,
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a consistent map.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for `token`: its id (the cookie's value) and the
    /// session.
    pub fn start(&self, token: String) -> Result<(String, Session), Full> {
        let now = Instant::now();
        let mut table = self.lock();
        if table.len() >= self.max {
            table.retain(|_, s| s.expires > now);
        }
        if table.len() >= self.max {
            return Err(Full(self.max));
        }
        let id = random_id();
        let session = Session {
            token,
            csrf: random_id(),
            expires: now + self.ttl,
        };
        table.insert(id.clone(), session.clone());
        count(table.len());
        Ok((id, session))
    }

    /// The live session of `id`.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut table = self.lock();
        match table.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                table.remove(id);
                count(table.len());
                None
            }
            None => None,
        }
    }

    /// Ends the session of `id`.
    pub fn end(&self, id: &str) {
        let mut table = self.lock();
        table.remove(id);
        count(table.len());
    }

    /// Seconds a session lasts (the cookie's Max-Age).
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_expire() {
        let sessions = Sessions::new(Duration::from_mins(1), 2);
        let (a, sa) = sessions.start("ta".to_owned()).unwrap();
        let (b, _) = sessions.start("tb".to_owned()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(sessions.start("tc".to_owned()).is_err(), "full");
        assert_eq!(sessions.get(&a).unwrap().token, "ta");
        assert_eq!(sessions.get(&a).unwrap().csrf, sa.csrf);
        sessions.end(&a);
        assert!(sessions.get(&a).is_none());
        assert!(sessions.start("tc".to_owned()).is_ok(), "a place freed");

        let short = Sessions::new(Duration::ZERO, 1);
        let (id, _) = short.start("t".to_owned()).unwrap();
        assert!(short.get(&id).is_none(), "expired");
        assert!(
            short.start("u".to_owned()).is_ok(),
            "expired ones are swept"
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(cookie_value("a=1; auditrail_session=abc; b=2"), Some("abc"));
        assert_eq!(cookie_value("auditrail_sessionx=1"), None);
        assert_eq!(cookie_value(""), None);
        assert!(
            format!(
                "{:?}",
                Session {
                    token: "secret".to_owned(),
                    csrf: String::new(),
                    expires: Instant::now()
                }
            )
            .contains("***")
        );
    }
}
