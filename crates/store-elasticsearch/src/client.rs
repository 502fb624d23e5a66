//! Talking to the cluster: one client per node with failover between them,
//! and reading answers into the store's error kinds.
//!
//! Every request this store sends is idempotent (a bulk of `create` by
//! event id answers 409 for what is already there; searches, counts,
//! template and policy puts, index deletions), so a request whose node
//! cannot be reached, or answers 502/503/504, is sent to the next node
//! instead of failing: with one node of N down, no request fails.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auditrail_store::StoreError;
use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{StatusCode, Url};
use serde_json::Value as Json;

use crate::options::{Auth, ElasticOptions};

/// The cluster's nodes, each with its own client, used round robin.
pub(crate) struct Nodes {
    nodes: Vec<(Url, Elasticsearch)>,
    next: AtomicUsize,
}

impl Nodes {
    /// One client per URL: credentials, custom CA, timeout.
    pub(crate) fn new(options: &ElasticOptions) -> Result<Self, StoreError> {
        let urls = options
            .urls
            .iter()
            .map(|u| {
                Url::parse(u).map_err(|e| {
                    StoreError::InvalidRequest(format!("invalid Elasticsearch URL {u:?}: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(StoreError::InvalidRequest(
                "no Elasticsearch URL given".to_owned(),
            ));
        }
        let ca_pem = match &options.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                StoreError::InvalidRequest(format!(
                    "cannot read the CA file {}: {e}",
                    path.display()
                ))
            })?),
            None => None,
        };
        let nodes = urls
            .into_iter()
            .map(|url| {
                // One certificate value per client: it is not `Clone`.
                let ca = ca_pem
                    .as_deref()
                    .map(|pem| {
                        Certificate::from_pem(pem).map_err(|e| {
                            StoreError::InvalidRequest(format!(
                                "{} is not a PEM certificate: {e}",
                                options
                                    .ca_cert
                                    .as_deref()
                                    .unwrap_or_else(|| "?".as_ref())
                                    .display()
                            ))
                        })
                    })
                    .transpose()?;
                let client = node_client(&url, options, ca)?;
                Ok((url, client))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Self {
            nodes,
            next: AtomicUsize::new(0),
        })
    }

    /// The node URLs, for messages.
    pub(crate) fn urls(&self) -> impl Iterator<Item = &Url> {
        self.nodes.iter().map(|(url, _)| url)
    }

    /// Asks every node for its `info`, so that a wrong URL, a node down or
    /// refused credentials show at start. Fails when no node answers or
    /// one refuses the credentials; a node that cannot be reached (or
    /// answers 502, 503 or 504) while another answers is logged: requests
    /// fail over past it.
    pub(crate) async fn probe(&self) -> Result<(), StoreError> {
        let mut reached = 0;
        let mut last = None;
        for (url, client) in &self.nodes {
            let failure = match client.info().send().await {
                Ok(response) if !node_failed(response.status_code()) => {
                    answer(&format!("info of {url}"), response).await?;
                    reached += 1;
                    continue;
                }
                Ok(response) => format!("{url} answered {}", response.status_code()),
                Err(e) => format!("{url}: {e}"),
            };
            tracing::warn!(node = %url, %failure, "an Elasticsearch node cannot serve requests; they go to the others");
            last = Some(failure);
        }
        if reached == 0 {
            return Err(StoreError::Unavailable(format!(
                "cannot reach Elasticsearch at {}: {}",
                self.urls().map(Url::as_str).collect::<Vec<_>>().join(", "),
                last.unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Sends `request` to the next node, and on to the others while a node
    /// cannot be reached or answers 502, 503 or 504. The last node's
    /// answer (or failure) is the result.
    pub(crate) async fn send<F, Fut>(&self, what: &str, request: F) -> Result<Response, StoreError>
    where
        F: Fn(Elasticsearch) -> Fut,
        Fut: Future<Output = Result<Response, elasticsearch::Error>>,
    {
        let count = self.nodes.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let mut failure = String::new();
        for attempt in 0..count {
            let (url, client) = &self.nodes[(first + attempt) % count];
            let last = attempt + 1 == count;
            match request(client.clone()).await {
                Ok(response) if last || !node_failed(response.status_code()) => {
                    return Ok(response);
                }
                Ok(response) => {
                    failure = format!("{url} answered {}", response.status_code());
                }
                Err(e) => failure = format!("{url}: {e}"),
            }
            if !last {
                tracing::warn!(%what, %failure, "Elasticsearch node failed; trying the next");
            }
        }
        Err(StoreError::Unavailable(format!(
            "Elasticsearch {what}: {failure}"
        )))
    }
}

/// Whether an answer says the node (or a proxy before it), not the
/// cluster, failed: another node may serve the request.
fn node_failed(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

fn node_client(
    url: &Url,
    options: &ElasticOptions,
    ca: Option<Certificate>,
) -> Result<Elasticsearch, StoreError> {
    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url.clone()))
        .timeout(Duration::from_secs(options.timeout_secs.max(1)));
    builder = match &options.auth {
        Auth::None => builder,
        Auth::Basic { username, password } => {
            builder.auth(Credentials::Basic(username.clone(), password.clone()))
        }
        Auth::ApiKey(key) => builder.auth(Credentials::EncodedApiKey(key.clone())),
        Auth::Bearer(token) => builder.auth(Credentials::Bearer(token.clone())),
    };
    if let Some(cert) = ca {
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    let transport = builder
        .build()
        .map_err(|e| StoreError::Internal(format!("cannot build the Elasticsearch client: {e}")))?;
    Ok(Elasticsearch::new(transport))
}

/// The most characters of an unexpected answer an error repeats.
const BODY_CHARS: usize = 300;

/// Why Elasticsearch refused a request, from its error answer: the first
/// root cause (the shard's own words) rather than the summary ("all shards
/// failed"), else the summary, else the start of the body.
pub(crate) fn error_reason(body: &Json, text: &str) -> String {
    let root = &body["error"]["root_cause"][0];
    if let Some(reason) = root["reason"].as_str() {
        return match root["type"].as_str() {
            Some(kind) => format!("{kind}: {reason}"),
            None => reason.to_owned(),
        };
    }
    if let Some(reason) = body["error"]["reason"].as_str() {
        return match body["error"]["type"].as_str() {
            Some(kind) => format!("{kind}: {reason}"),
            None => reason.to_owned(),
        };
    }
    let text = text.trim();
    if text.is_empty() {
        return "(an empty answer)".to_owned();
    }
    match text.char_indices().nth(BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The store error of an error `status` with `reason`: 400 (and 413, a
/// request over `http.max_content_length`) a bad request; 401/403 refused
/// credentials; 408, 429 and 5xx unavailability (retry).
pub(crate) fn status_error(what: &str, status: StatusCode, reason: &str) -> StoreError {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
            StoreError::InvalidRequest(format!("Elasticsearch refused {what} ({status}): {reason}"))
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StoreError::Internal(format!(
            "Elasticsearch refused the credentials for {what} ({status}): {reason}"
        )),
        s if s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::TOO_MANY_REQUESTS
            || s.is_server_error() =>
        {
            StoreError::Unavailable(format!("Elasticsearch {what} ({status}): {reason}"))
        }
        _ => StoreError::Internal(format!("Elasticsearch {what} ({status}): {reason}")),
    }
}

/// A search answer that Elasticsearch gave with 200 although part of it is
/// missing (failed shards, a timeout; partial results are on by default)
/// is no answer: UNAVAILABLE, naming the first failure.
pub(crate) fn complete(what: &str, answer: Json) -> Result<Json, StoreError> {
    let failed = answer["_shards"]["failed"].as_u64().unwrap_or(0);
    if failed > 0 {
        let total = answer["_shards"]["total"].as_u64().unwrap_or(0);
        let reason = answer["_shards"]["failures"][0]["reason"]["reason"]
            .as_str()
            .unwrap_or("no reason given");
        return Err(StoreError::Unavailable(format!(
            "Elasticsearch {what}: {failed} of {total} shards failed, so the answer would be \
             incomplete: {reason}"
        )));
    }
    if answer["timed_out"].as_bool() == Some(true) {
        return Err(StoreError::Unavailable(format!(
            "Elasticsearch {what} timed out, so the answer would be incomplete"
        )));
    }
    Ok(answer)
}

/// Reads a response, mapping an error status to the store's error kinds
/// ([`status_error`]). The status is read before the body, which may be
/// empty or not JSON (a 413, a proxy's page).
pub(crate) async fn answer(what: &str, response: Response) -> Result<Json, StoreError> {
    let status = response.status_code();
    let text = response
        .text()
        .await
        .map_err(|e| StoreError::Unavailable(format!("Elasticsearch {what}: {e}")))?;
    let body: Option<Json> = serde_json::from_str(&text).ok();
    if status.is_success() {
        return body.ok_or_else(|| {
            StoreError::Unavailable(format!(
                "Elasticsearch {what}: the answer is not JSON: {}",
                error_reason(&Json::Null, &text)
            ))
        });
    }
    let reason = error_reason(body.as_ref().unwrap_or(&Json::Null), &text);
    Err(status_error(what, status, &reason))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_name_the_root_cause_and_the_status_decides_the_kind() {
        let body = json!({"error": {
            "root_cause": [{"type": "illegal_argument_exception", "reason": "Result window is too large"}],
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
        }});
        assert_eq!(
            error_reason(&body, ""),
            "illegal_argument_exception: Result window is too large"
        );
        assert_eq!(
            error_reason(&json!({"error": {"reason": "summary"}}), ""),
            "summary"
        );
        assert_eq!(error_reason(&Json::Null, ""), "(an empty answer)");
        let page = "<html>".repeat(100);
        assert!(error_reason(&Json::Null, &page).ends_with('…'));
        assert!(matches!(
            status_error("x", StatusCode::REQUEST_TIMEOUT, "r"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::PAYLOAD_TOO_LARGE, "r"),
            StoreError::InvalidRequest(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::TOO_MANY_REQUESTS, "r"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::BAD_REQUEST, "r"),
            StoreError::InvalidRequest(_)
        ));
    }

    #[test]
    fn partial_answers_are_unavailable() {
        let partial = json!({
            "timed_out": false,
            "_shards": {"total": 5, "successful": 3, "failed": 2, "failures": [
                {"shard": 1, "reason": {"type": "node_disconnected_exception", "reason": "node left"}}
            ]},
            "hits": {"hits": []},
        });
        let err = complete("search", partial).expect_err("failed shards");
        assert!(
            matches!(&err, StoreError::Unavailable(m) if m.contains("2 of 5 shards failed") && m.contains("node left")),
            "{err}"
        );
        let late = json!({"timed_out": true, "_shards": {"total": 1, "failed": 0}});
        assert!(matches!(
            complete("search", late),
            Err(StoreError::Unavailable(_))
        ));
        let whole = json!({"timed_out": false, "_shards": {"total": 1, "failed": 0}, "count": 3});
        assert_eq!(complete("count", whole.clone()).expect("whole"), whole);
    }

    #[test]
    fn bad_urls_and_ca_files_are_clear_errors() {
        let err = Nodes::new(&ElasticOptions::for_url("not a url"))
            .err()
            .expect("invalid");
        assert!(
            err.to_string().contains("invalid Elasticsearch URL"),
            "{err}"
        );
        let err = Nodes::new(&ElasticOptions {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..ElasticOptions::default()
        })
        .err()
        .expect("unreadable CA");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = Nodes::new(&ElasticOptions {
            urls: Vec::new(),
            ..ElasticOptions::default()
        })
        .err()
        .expect("no URL");
        assert!(err.to_string().contains("no Elasticsearch URL"), "{err}");
    }

    /// A node that answers every request with `status` and `body`, for as
    /// many connections as come; its URL.
    async fn fake_node(status: &'static str, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = vec![0; 65536];
                    let _ = socket.read(&mut buffer).await;
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                         x-elastic-product: Elasticsearch\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        url
    }

    /// A URL nothing listens on.
    fn dead_url() -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_or(1, |a| a.port());
        format!("http://127.0.0.1:{port}")
    }

    #[tokio::test]
    async fn requests_fail_over_past_a_dead_or_failing_node() {
        let good = fake_node("200 OK", r#"{"count": 7}"#).await;
        let failing = fake_node("503 Service Unavailable", r#"{"error": "down"}"#).await;
        let nodes = Nodes::new(&ElasticOptions {
            urls: vec![dead_url(), failing, good],
            timeout_secs: 2,
            ..ElasticOptions::default()
        })
        .expect("nodes");
        // Whichever node each request starts at, it reaches the good one.
        for _ in 0..3 {
            let response = nodes
                .send("count", |client| async move {
                    client.count(elasticsearch::CountParts::None).send().await
                })
                .await
                .expect("failed over");
            let body = answer("count", response).await.expect("answered");
            assert_eq!(body["count"], 7);
        }
        nodes.probe().await.expect("one node answers");
    }

    #[tokio::test]
    async fn no_node_reachable_is_a_clear_error_at_start() {
        let nodes = Nodes::new(&ElasticOptions {
            urls: vec![dead_url(), dead_url()],
            timeout_secs: 2,
            ..ElasticOptions::default()
        })
        .expect("nodes");
        let err = nodes.probe().await.expect_err("nothing answers");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(
            err.to_string().contains("cannot reach Elasticsearch"),
            "{err}"
        );
    }
}
