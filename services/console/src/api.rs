//! The JSON API under `/api/v1`: one endpoint per read RPC (search,
//! histogram, event, history, diff, export, reports, ingest status), the
//! session endpoints, and running a report. Each endpoint reads its query
//! string strictly (`params`), makes the call with the user's token
//! (`backend`) and answers the message in the proto3 JSON mapping (`json`)
//! or, for exports and downloads, streams the document as the service
//! sends it. Errors are `{"code", "message"}` (`error`).
//!
//! State-changing requests (sign-in, sign-out, running a report) must come
//! from the console's own pages: their `Origin` must be the console's, and
//! when the browser holds a session, `X-CSRF-Token` must be the session's.

use std::sync::Arc;

use auditrail_proto::v1;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;

use crate::App;
use crate::backend::{OnBehalf, X_FORWARDED_FOR, streaming, unary};
use crate::error::ApiError;
use crate::json::to_json;
use crate::params::Params;
use crate::session::{COOKIE, Session, cookie_value};

type Answer = Result<Response, ApiError>;

/// The session of the request's cookie, if live.
fn session(app: &App, headers: &HeaderMap) -> Option<(String, Session)> {
    let cookie = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookie_value(cookie)?;
    app.sessions.get(id).map(|s| (id.to_owned(), s))
}

/// Whom the request's calls are made for: its session's token and the
/// addresses it came from (`X-Forwarded-For`, the browser's appended by
/// [`crate::forward_for`]).
fn on_behalf(app: &App, headers: &HeaderMap) -> OnBehalf {
    OnBehalf {
        token: session(app, headers).map(|(_, s)| s.token),
        forwarded_for: forwarded_for(headers),
    }
}

fn forwarded_for(headers: &HeaderMap) -> Option<String> {
    headers
        .get(X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "the tail of handlers whose other returns are errors"
)]
fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

/// `request` as a unary call on behalf of the request's session.
fn call_of<T>(app: &App, headers: &HeaderMap, request: T) -> Result<tonic::Request<T>, ApiError> {
    unary(request, &on_behalf(app, headers))
}

/// The answer of a unary call, `name` its message in the contract.
async fn answer<T, F>(call: F, name: &str) -> Answer
where
    T: prost::Message,
    F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let response = call.await?;
    ok(to_json(response.get_ref(), name)?)
}

/// Refuses a state-changing request that does not come from the console's
/// own pages (see the module docs).
fn check_origin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = || {
        ApiError::forbidden(
            "cross-origin request refused: state-changing requests must come from the \
             console's own pages (Origin must match Host)",
        )
    };
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?;
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(refused)?;
    if origin_host != host {
        return Err(refused());
    }
    if let Some((_, session)) = session(app, headers) {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
            return Err(ApiError::forbidden(
                "missing or wrong X-CSRF-Token: reload the page (GET /api/v1/session gives it)",
            ));
        }
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `GET /api/v1/session`: whether the browser is signed in, and the CSRF
/// token its pages send back.
pub async fn get_session(State(app): State<Arc<App>>, headers: HeaderMap) -> Answer {
    let session = session(&app, &headers);
    ok(json!({
        "signedIn": session.is_some(),
        "csrfToken": session.map(|(_, s)| s.csrf).unwrap_or_default(),
    }))
}

/// The body of a sign-in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    token: String,
}

/// `POST /api/v1/session` `{"token": "…"}`: checks the token against the
/// query service (refused: 401) and starts a session with a new id.
pub async fn sign_in(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    check_origin(&app, &headers)?;
    let Json(body) = body.map_err(|e| ApiError::invalid(format!("sign-in body: {e}")))?;
    let token = body.token.trim().to_owned();
    if token.is_empty() {
        return Err(ApiError::invalid("token is required"));
    }
    // A one-event search tells whether the services know the token; a
    // valid identity without the read permission may still sign in.
    let probe = v1::SearchRequest {
        page_size: 1,
        ..v1::SearchRequest::default()
    };
    match app
        .backends
        .query()
        .search(unary(
            probe,
            &OnBehalf {
                token: Some(token.clone()),
                forwarded_for: forwarded_for(&headers),
            },
        )?)
        .await
    {
        Ok(_) => {}
        Err(status) if status.code() == tonic::Code::PermissionDenied => {}
        Err(status) => return Err(status.into()),
    }
    if let Some((old, _)) = session(&app, &headers) {
        app.sessions.end(&old);
    }
    let (id, session) = app
        .sessions
        .start(token)
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        app.sessions.ttl_secs()
    );
    let mut response = Json(json!({"signedIn": true, "csrfToken": session.csrf})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| ApiError::invalid("bad cookie"))?,
    );
    Ok(response)
}

/// `DELETE /api/v1/session`: signs out.
pub async fn sign_out(State(app): State<Arc<App>>, headers: HeaderMap) -> Answer {
    check_origin(&app, &headers)?;
    if let Some((id, _)) = session(&app, &headers) {
        app.sessions.end(&id);
    }
    let mut response = Json(json!({"signedIn": false, "csrfToken": ""})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "auditrail_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(response)
}

/// `GET /api/v1/search`: `QueryService.Search`.
pub async fn search(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let request = v1::SearchRequest {
        filter: Some(p.filter()?),
        sort: p.sort()?.into(),
        page_size: p.number("pageSize")?.unwrap_or(0),
        page_token: p.text("pageToken")?,
        timeline: p.switch("timeline", false)?,
        include_raw: false,
        exact_total: p.switch("exactTotal", false)?,
    };
    p.finish()?;
    let call = call_of(&app, &headers, request)?;
    answer(app.backends.query().search(call), "SearchResponse").await
}

/// A bucket width as people write it: `30s`, `5m`, `1h`, `1d`, `1w`.
fn interval(text: &str) -> Result<prost_types::Duration, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "parameter interval = {text:?}: a whole number and a unit s, m, h, d or w, e.g. 5m"
        ))
    };
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    Ok(prost_types::Duration {
        seconds: n.checked_mul(scale).ok_or_else(bad)?,
        nanos: 0,
    })
}

/// `GET /api/v1/histogram`: `QueryService.Histogram`.
pub async fn histogram(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let top_fields = p
        .all("top")
        .iter()
        .map(|t| match t.as_str() {
            "verb" => Ok(v1::TopField::Verb.into()),
            "resource" => Ok(v1::TopField::Resource.into()),
            "user" => Ok(v1::TopField::User.into()),
            "namespace" => Ok(v1::TopField::Namespace.into()),
            other => Err(ApiError::invalid(format!(
                "parameter top = {other:?}: give verb, resource, user or namespace"
            ))),
        })
        .collect::<Result<Vec<i32>, _>>()?;
    let request = v1::HistogramRequest {
        filter: Some(p.filter()?),
        interval: p.one("interval")?.as_deref().map(interval).transpose()?,
        top_fields,
        top_n: p.number("topN")?.unwrap_or(0),
        timeline: p.switch("timeline", false)?,
    };
    p.finish()?;
    let call = call_of(&app, &headers, request)?;
    answer(app.backends.query().histogram(call), "HistogramResponse").await
}

/// The original bytes of an event as a document: JSON (unchanged) or
/// YAML (converted, key order kept).
fn event_document(raw: &[u8], yaml: bool) -> Result<Vec<u8>, ApiError> {
    if !yaml {
        return Ok(raw.to_vec());
    }
    let mut writer = auditrail_document::DocumentWriter::new(auditrail_document::Format::Yaml);
    let mut out = Vec::new();
    writer
        .event(raw, &mut out)
        .map_err(|e| ApiError::invalid(format!("the event cannot be written as YAML: {e}")))?;
    writer.finish(&mut out);
    Ok(out)
}

/// `GET /api/v1/events/{id}`: `QueryService.GetEvent`, with the original
/// event as text (`raw`) and as YAML (`yaml`). With `download=json` or
/// `download=yaml`, the original event alone as a file.
pub async fn event(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let download = p.one("download")?;
    p.finish()?;
    let behalf = on_behalf(&app, &headers);
    let request = v1::GetEventRequest { id: id.clone() };
    let answer = app
        .backends
        .query()
        .get_event(unary(request, &behalf)?)
        .await?
        .into_inner();
    let mut event = answer
        .event
        .ok_or_else(|| ApiError::not_found(format!("no event with id {id}")))?;
    let raw = std::mem::take(&mut event.raw);
    match download.as_deref() {
        None => {}
        Some(format @ ("json" | "yaml")) => {
            let yaml = format == "yaml";
            let media = if yaml {
                "application/yaml"
            } else {
                "application/json"
            };
            return Ok(file(
                event_document(&raw, yaml)?.into(),
                media,
                &format!("event-{id}.{format}"),
            ));
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "parameter download = {other:?}: give json or yaml"
            )));
        }
    }
    let yaml = String::from_utf8_lossy(&event_document(&raw, true)?).into_owned();
    ok(json!({
        "event": to_json(&event, "AuditEvent")?,
        "raw": String::from_utf8_lossy(&raw),
        "yaml": yaml,
    }))
}

/// A file to download.
fn file(body: Body, media_type: &str, name: &str) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(media_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    // The name is made of a fixed prefix and ids or words of ours.
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `GET /api/v1/history`: `QueryService.History`.
pub async fn history(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let request = v1::HistoryRequest {
        cluster: p.text("cluster")?,
        api_group: p.text("apiGroup")?,
        resource: p.text("resource")?,
        namespace: p.text("namespace")?,
        name: p.text("name")?,
        from: p.text("from")?,
        to: p.text("to")?,
        page_size: p.number("pageSize")?.unwrap_or(0),
        page_token: p.text("pageToken")?,
    };
    p.finish()?;
    let call = call_of(&app, &headers, request)?;
    answer(app.backends.query().history(call), "HistoryResponse").await
}

/// `GET /api/v1/diff?from=ID&to=ID`: `QueryService.Diff`.
pub async fn diff(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let request = v1::DiffRequest {
        from_event_id: p.required("from")?,
        to_event_id: p.required("to")?,
        ignore_noisy_metadata: p.switch("ignoreNoise", false)?,
        context_lines: p.number("context")?,
    };
    p.finish()?;
    let call = call_of(&app, &headers, request)?;
    answer(app.backends.query().diff(call), "DiffResponse").await
}

/// A stream of a service's chunks as a download: the first chunk is
/// awaited so that a refusal is an error answer, not a broken file; an
/// error after it aborts the body, so the browser marks the download
/// failed (an incomplete document is never presented as whole).
async fn stream_download<T, F>(
    mut stream: tonic::Streaming<T>,
    data: F,
    media_type: &str,
    name: &str,
) -> Answer
where
    T: Send + 'static,
    F: Fn(T) -> Vec<u8> + Send + Sync + Copy + 'static,
{
    let first = stream.message().await?;
    let head = tokio_stream::iter(first.map(|c| Ok::<_, tonic::Status>(Bytes::from(data(c)))));
    let rest = stream.map(move |chunk| chunk.map(|c| Bytes::from(data(c))));
    Ok(file(Body::from_stream(head.chain(rest)), media_type, name))
}

/// `GET /api/v1/export`: `QueryService.Export` as a file, byte for byte
/// what `auditrail export` writes.
pub async fn export(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let (format, media, ext) = match p.one("format")?.as_deref() {
        None | Some("json") => (v1::ExportFormat::Json, "application/json", "json"),
        Some("ndjson") => (v1::ExportFormat::Ndjson, "application/x-ndjson", "ndjson"),
        Some("yaml") => (v1::ExportFormat::Yaml, "application/yaml", "yaml"),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "parameter format = {other:?}: give json, ndjson or yaml"
            )));
        }
    };
    let request = v1::ExportRequest {
        filter: Some(p.filter()?),
        format: format.into(),
        sort: p.sort()?.into(),
        timeline: p.switch("timeline", false)?,
        limit: p.number("limit")?.unwrap_or(0),
        with_provenance: p.switch("provenance", false)?,
    };
    p.finish()?;
    let behalf = on_behalf(&app, &headers);
    let stream = app
        .backends
        .query()
        .export(streaming(request, &behalf)?)
        .await?
        .into_inner();
    stream_download(
        stream,
        |c: v1::ExportChunk| c.data,
        media,
        &format!("auditrail-export.{ext}"),
    )
    .await
}

/// `GET /api/v1/ingest`: the ingestor's status and dead letters and the
/// store's statistics per cluster and type. Each part is the service's
/// answer or its error: a console beside a store with no ingestor still
/// shows the store, and says why the rest is missing.
pub async fn ingest(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    Params::parse(query.as_deref()).finish()?;
    let behalf = on_behalf(&app, &headers);
    let part = |r: Result<Value, ApiError>| match r {
        Ok(v) => v,
        Err(e) => {
            json!({"error": {"code": auditrail_server::code_name(e.code), "message": e.message}})
        }
    };
    let ingestor_status = async {
        let answer = app
            .backends
            .ingestor()
            .get_status(unary(v1::GetStatusRequest::default(), &behalf)?)
            .await?;
        to_json(answer.get_ref(), "GetStatusResponse")
    };
    let dead = async {
        let request = v1::ListDeadLettersRequest {
            page_size: 20,
            ..v1::ListDeadLettersRequest::default()
        };
        let answer = app
            .backends
            .ingestor()
            .list_dead_letters(unary(request, &behalf)?)
            .await?;
        to_json(answer.get_ref(), "ListDeadLettersResponse")
    };
    let store_stats = async {
        let answer = app
            .backends
            .indexer()
            .get_index_stats(unary(v1::GetIndexStatsRequest::default(), &behalf)?)
            .await?;
        to_json(answer.get_ref(), "GetIndexStatsResponse")
    };
    let (ingestor_status, dead, store_stats) = tokio::join!(ingestor_status, dead, store_stats);
    ok(json!({
        "status": part(ingestor_status),
        "deadLetters": part(dead),
        "store": part(store_stats),
    }))
}

/// `GET /api/v1/reports/definitions`: `ReportService.ListReportDefinitions`.
pub async fn report_definitions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let request = v1::ListReportDefinitionsRequest {
        page_size: p.number("pageSize")?.unwrap_or(0),
        page_token: p.text("pageToken")?,
        cluster: p.text("cluster")?,
    };
    p.finish()?;
    let call = call_of(&app, &headers, request)?;
    answer(
        app.backends.reporter().list_report_definitions(call),
        "ListReportDefinitionsResponse",
    )
    .await
}

/// `GET /api/v1/reports`: `ReportService.ListReports`.
pub async fn reports(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let request = v1::ListReportsRequest {
        definition_name: p.text("definition")?,
        page_size: p.number("pageSize")?.unwrap_or(0),
        page_token: p.text("pageToken")?,
    };
    p.finish()?;
    let call = call_of(&app, &headers, request)?;
    answer(
        app.backends.reporter().list_reports(call),
        "ListReportsResponse",
    )
    .await
}

/// `GET /api/v1/reports/{id}`: `ReportService.GetReport` (with
/// `contents=true`, the entries too).
pub async fn report(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let request = v1::GetReportRequest {
        report_id: id,
        include_contents: p.switch("contents", false)?,
    };
    p.finish()?;
    let call = call_of(&app, &headers, request)?;
    answer(
        app.backends.reporter().get_report(call),
        "GetReportResponse",
    )
    .await
}

/// `GET /api/v1/reports/{id}/download?part=…&format=…`:
/// `ReportService.DownloadReport` as a file.
pub async fn report_download(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut p = Params::parse(query.as_deref());
    let format = match p.one("format")?.as_deref() {
        None | Some("") => v1::ReportFormat::Unspecified,
        Some("json") => v1::ReportFormat::Json,
        Some("csv") => v1::ReportFormat::Csv,
        Some("yaml") => v1::ReportFormat::Yaml,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "parameter format = {other:?}: give json, csv or yaml"
            )));
        }
    };
    let part = match p.one("part")?.as_deref() {
        None | Some("") => v1::ReportPart::Unspecified,
        Some("all") => v1::ReportPart::All,
        Some("summary") => v1::ReportPart::Summary,
        Some("endpoints") => v1::ReportPart::Endpoints,
        Some("namespaces") => v1::ReportPart::Namespaces,
        Some("events") => v1::ReportPart::Events,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "parameter part = {other:?}: give all, summary, endpoints, namespaces or events"
            )));
        }
    };
    p.finish()?;
    let behalf = on_behalf(&app, &headers);
    let request = v1::DownloadReportRequest {
        report_id: id,
        format: format.into(),
        part: part.into(),
    };
    let mut stream = app
        .backends
        .reporter()
        .download_report(streaming(request, &behalf)?)
        .await?
        .into_inner();
    // The first chunk names the file and its type.
    let first = stream
        .message()
        .await?
        .ok_or_else(|| ApiError::not_found("the report download was empty"))?;
    let media = if first.media_type.is_empty() {
        "application/octet-stream".to_owned()
    } else {
        first.media_type.clone()
    };
    let name = first.file_name.clone();
    let head = tokio_stream::once(Ok::<_, tonic::Status>(Bytes::from(first.data)));
    let rest = stream.map(|chunk| chunk.map(|c| Bytes::from(c.data)));
    Ok(file(Body::from_stream(head.chain(rest)), &media, &name))
}

/// The body of a report run: the definition and the interval, both
/// required (RFC 3339 times).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Run {
    definition: String,
    start: String,
    end: String,
}

fn timestamp(field: &str, text: &str) -> Result<prost_types::Timestamp, ApiError> {
    let t: jiff::Timestamp = text.parse().map_err(|e| {
        ApiError::invalid(format!("{field} = {text:?} is not an RFC 3339 time: {e}"))
    })?;
    Ok(prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    })
}

/// `POST /api/v1/reports/run` `{"definition", "start", "end"}`:
/// `ReportService.RunReport`.
pub async fn run_report(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<Run>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    check_origin(&app, &headers)?;
    let Json(body) = body.map_err(|e| ApiError::invalid(format!("run body: {e}")))?;
    let interval = Some(v1::TimeInterval {
        start: Some(timestamp("start", &body.start)?),
        end: Some(timestamp("end", &body.end)?),
    });
    let request = v1::RunReportRequest {
        definition_name: body.definition,
        interval,
    };
    let behalf = on_behalf(&app, &headers);
    let answer = app
        .backends
        .reporter()
        .run_report(unary(request, &behalf)?)
        .await?;
    let mut response = Json(to_json(answer.get_ref(), "RunReportResponse")?).into_response();
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

/// Any other `/api` path.
pub async fn no_such_endpoint(uri: http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no endpoint {}; see the JSON API in the README",
        uri.path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_people_write_them() {
        assert_eq!(interval("5m").unwrap().seconds, 300);
        assert_eq!(interval("1d").unwrap().seconds, 86_400);
        for bad in ["", "m", "5", "5y", "x5m", "99999999999999999w"] {
            let err = interval(bad).unwrap_err().message;
            assert!(err.contains("parameter interval"), "{bad}: {err}");
        }
    }

    #[test]
    fn events_become_yaml_documents_in_key_order() {
        let raw = br#"{"kind":"Event","b":1,"a":{"z":true}}"#;
        let yaml = String::from_utf8(event_document(raw, true).unwrap()).unwrap();
        let kind = yaml.find("kind").unwrap();
        let b = yaml.find("b:").unwrap();
        let a = yaml.find("a:").unwrap();
        assert!(kind < b && b < a, "{yaml}");
        assert_eq!(event_document(raw, false).unwrap(), raw);
    }
}
