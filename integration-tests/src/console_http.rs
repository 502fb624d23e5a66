//! The web console as a browser reaches it over HTTP: requests, and a
//! signed-in session (its cookie and CSRF token). Shared by the console's
//! tests and the access tests that go through the console.

#![allow(
    clippy::unwrap_used,
    reason = "test harness: a failed unwrap is a failed test"
)]

use std::time::Duration;

use serde_json::{Value, json};

/// An HTTP answer: status, headers, body.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON; a body that is not JSON fails the test.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }
}

/// `method` (GET, DELETE or POST with a JSON `body`) on `url` with
/// `headers`, whatever the status.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_mins(1)))
        .build()
        .into();
    let mut response = match method {
        "GET" | "DELETE" => {
            let mut r = if method == "GET" {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call().unwrap()
        }
        _ => {
            let mut r = agent.post(url).header("Content-Type", "application/json");
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(serde_json::to_vec(body.unwrap_or(&json!({}))).unwrap())
                .unwrap()
        }
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// A signed-in browser, as far as HTTP goes: its cookie and CSRF token.
pub struct Session {
    /// `name=value` of the session cookie.
    pub cookie: String,
    /// The CSRF token its state-changing requests send.
    pub csrf: String,
}

/// Signs in at the console `console` (`http://ADDR`) with `token`, as its
/// sign-in page does (`Origin` its own); the cookie must be `HttpOnly`,
/// `Secure`, `SameSite=Strict`.
pub fn sign_in(console: &str, token: &str) -> Session {
    let origin = console.to_owned();
    let answer = http(
        "POST",
        &format!("{console}/api/v1/session"),
        &[("Origin", &origin)],
        Some(&json!({"token": token})),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let set_cookie = answer.headers["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    Session {
        cookie,
        csrf: answer.json()["csrfToken"].as_str().unwrap().to_owned(),
    }
}

impl Session {
    /// `GET {console}{path}` in this session.
    pub fn get(&self, console: &str, path: &str) -> Answer {
        http(
            "GET",
            &format!("{console}{path}"),
            &[("Cookie", &self.cookie)],
            None,
        )
    }
}
