//! Opaque page tokens.
//!
//! A token carries the search-after position (time and id of the last event
//! returned), the time range resolved on the first page (so `now-15m` does
//! not drift while a user pages), and a fingerprint of the request that
//! issued it; a token presented with another filter or order is refused
//! instead of silently returning a wrong page. It is JSON in URL-safe
//! base64: opaque to clients, readable when debugging, and versioned.

use auditrail_event::EventId;
use auditrail_store::Cursor;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::filter::FilterError;

/// The format version written into every token.
const VERSION: u32 = 1;

/// What a page token holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    /// Fingerprint of the request the token belongs to.
    pub fingerprint: [u8; 16],
    /// Resolved start of the time range.
    pub from: Option<Timestamp>,
    /// Resolved end of the time range.
    pub to: Timestamp,
    /// Continue after this event.
    pub after: Cursor,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u32,
    f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<Timestamp>,
    to: Timestamp,
    t: Timestamp,
    id: String,
}

fn hex16(bytes: &[u8; 16]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl PageToken {
    /// The token as the string handed to clients.
    pub fn encode(&self) -> String {
        let wire = Wire {
            v: VERSION,
            f: hex16(&self.fingerprint),
            from: self.from,
            to: self.to,
            t: self.after.time,
            id: self.after.id.to_hex(),
        };
        // Serialising plain strings and timestamps cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// The token continuing after `next` (the last event of a page), or
    /// the empty string on the last page.
    pub fn next_page(
        fingerprint: [u8; 16],
        from: Option<Timestamp>,
        to: Timestamp,
        next: Option<Cursor>,
    ) -> String {
        next.map(|after| {
            Self {
                fingerprint,
                from,
                to,
                after,
            }
            .encode()
        })
        .unwrap_or_default()
    }

    /// Reads a token and checks that it was issued for `fingerprint`.
    pub fn decode(text: &str, fingerprint: [u8; 16]) -> Result<Self, FilterError> {
        let malformed = || FilterError("page_token is malformed".to_owned());
        let json = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| malformed())?;
        let wire: Wire = serde_json::from_slice(&json).map_err(|_| malformed())?;
        if wire.v != VERSION {
            return Err(FilterError(format!(
                "page_token has version {}; this server reads version {VERSION}",
                wire.v
            )));
        }
        if wire.f != hex16(&fingerprint) {
            return Err(FilterError(
                "page_token was issued for a different filter, order or page request".to_owned(),
            ));
        }
        let id: EventId = wire.id.parse().map_err(|_| malformed())?;
        Ok(Self {
            fingerprint,
            from: wire.from,
            to: wire.to,
            after: Cursor { time: wire.t, id },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> PageToken {
        PageToken {
            fingerprint: [7; 16],
            from: Some("2026-01-01T00:00:00Z".parse().expect("t")),
            to: "2026-01-02T00:00:00.123456789Z".parse().expect("t"),
            after: Cursor {
                time: "2026-01-01T10:00:00.000001Z".parse().expect("t"),
                id: EventId::compute("c", b"x"),
            },
        }
    }

    #[test]
    fn round_trips() {
        let t = token();
        assert_eq!(PageToken::decode(&t.encode(), [7; 16]), Ok(t));
    }

    #[test]
    fn refuses_other_requests_and_garbage() {
        let t = token().encode();
        let err = PageToken::decode(&t, [8; 16]).expect_err("other request");
        assert!(err.0.contains("different"), "{err}");
        for garbage in ["", "!!!", "e30", &t[..t.len() / 2]] {
            let err = PageToken::decode(garbage, [7; 16]).expect_err(garbage);
            assert!(err.0.contains("malformed"), "{garbage}: {err}");
        }
    }
}
