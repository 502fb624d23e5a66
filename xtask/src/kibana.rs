//! `cargo xtask kibana-import`: loads auditrail's Kibana saved objects
//! (`kibana/auditrail.ndjson`: the data view over the audit indices, the
//! visualizations, the "latest policy changes" search and the dashboard)
//! through Kibana's saved-objects import API.
//!
//! Why a task and not only a curl line in the README: the import needs a
//! multipart body, the `kbn-xsrf` header, the space in the path and one of
//! two authorization forms, and Kibana answers HTTP 200 even when objects
//! failed to import (`"success": false` with an `errors` list). The task
//! gets these right once, prints each of Kibana's errors and exits non-zero
//! on any of them, so a script or a person sees a partial import at once.
//!
//! The HTTP client is `ureq` (blocking, rustls): xtask has no async runtime
//! and needs one POST. The multipart body is built here; it has one part.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;

use crate::cargo::workspace_root;

/// The saved objects in the repository, relative to the workspace root.
pub(crate) const NDJSON: &str = "kibana/auditrail.ndjson";

/// How long one import may take, connecting included.
const TIMEOUT: Duration = Duration::from_mins(1);

/// Options of `cargo xtask kibana-import`.
#[derive(Debug, clap::Args)]
pub(crate) struct KibanaImportArgs {
    /// Kibana's base URL, e.g. http://localhost:5601 (with its base path,
    /// if Kibana is served under one).
    #[arg(long)]
    url: String,
    /// Kibana space to import into; the default space without it.
    #[arg(long)]
    space: Option<String>,
    /// User for basic authentication (with --password).
    #[arg(long, requires = "password", conflicts_with = "api_key")]
    user: Option<String>,
    /// Password for basic authentication (with --user).
    #[arg(
        long,
        env = "KIBANA_PASSWORD",
        hide_env_values = true,
        requires = "user"
    )]
    password: Option<String>,
    /// API key, as Elasticsearch encodes it (base64 of `id:key`), sent as
    /// `Authorization: ApiKey …`.
    #[arg(long, env = "KIBANA_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The ndjson file of saved objects [default: kibana/auditrail.ndjson].
    #[arg(long)]
    file: Option<PathBuf>,
    /// Replace objects that already exist (same type and id).
    #[arg(long)]
    overwrite: bool,
}

/// How the import authenticates to Kibana.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    None,
    Basic { user: String, password: String },
    ApiKey(String),
}

impl Auth {
    /// The `Authorization` header's value, if any.
    fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Basic { user, password } => {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {token}"))
            }
            Auth::ApiKey(key) => Some(format!("ApiKey {key}")),
        }
    }
}

/// One import: where to, as whom, what.
#[derive(Debug, Clone)]
pub(crate) struct Import {
    pub(crate) url: String,
    pub(crate) space: Option<String>,
    pub(crate) auth: Auth,
    pub(crate) file: PathBuf,
    pub(crate) overwrite: bool,
}

pub(crate) fn run(args: &KibanaImportArgs) -> anyhow::Result<()> {
    let auth = match (&args.user, &args.password, &args.api_key) {
        (Some(user), Some(password), None) => Auth::Basic {
            user: user.clone(),
            password: password.clone(),
        },
        (None, None, Some(key)) => Auth::ApiKey(key.clone()),
        (None, None, None) => Auth::None,
        _ => anyhow::bail!("give either --user and --password, or --api-key"),
    };
    let import = Import {
        url: args.url.clone(),
        space: args.space.clone(),
        auth,
        file: args
            .file
            .clone()
            .unwrap_or_else(|| workspace_root().join(NDJSON)),
        overwrite: args.overwrite,
    };
    let count = import_saved_objects(&import)?;
    let space = import.space.as_deref().unwrap_or("default");
    println!(
        "imported {count} saved objects from {} into Kibana at {} (space {space})",
        import.file.display(),
        import.url
    );
    Ok(())
}

/// Sends the file to Kibana's import API; returns the number of objects
/// Kibana imported. An error when Kibana cannot be reached, answers with an
/// HTTP error, or reports any object it could not import.
pub(crate) fn import_saved_objects(import: &Import) -> anyhow::Result<u64> {
    let ndjson = std::fs::read(&import.file)
        .with_context(|| format!("cannot read {}", import.file.display()))?;
    let url = import_url(&import.url, import.space.as_deref(), import.overwrite)?;
    let (content_type, body) = multipart_file(&import.file, &ndjson);

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let mut request = agent
        .post(&url)
        .header("kbn-xsrf", "true")
        .header("Content-Type", &content_type);
    if let Some(value) = import.auth.header() {
        request = request.header("Authorization", &value);
    }
    let mut response = request.send(&body[..]).with_context(|| {
        format!(
            "cannot reach Kibana at {}: is it running, and is --url right?",
            import.url
        )
    })?;
    let status = response.status();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read Kibana's answer (HTTP {status})"))?;
    interpret_answer(status.as_u16(), &text)
}

/// `<base>[/s/<space>]/api/saved_objects/_import?overwrite=…`.
fn import_url(base: &str, space: Option<&str>, overwrite: bool) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/');
    anyhow::ensure!(
        base.starts_with("http://") || base.starts_with("https://"),
        "--url must start with http:// or https://, got {base:?}"
    );
    let mut url = base.to_owned();
    if let Some(space) = space {
        // Kibana's own rule for space ids; it also keeps the path intact.
        anyhow::ensure!(
            !space.is_empty()
                && space.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'_'
                    || b == b'-'),
            "--space must be a Kibana space id (a-z, 0-9, _ and -), got {space:?}"
        );
        write!(url, "/s/{space}")?;
    }
    write!(url, "/api/saved_objects/_import?overwrite={overwrite}")?;
    Ok(url)
}

/// A multipart/form-data body with the file as its one part, `file`; returns
/// the Content-Type (with the boundary) and the body.
fn multipart_file(path: &Path, content: &[u8]) -> (String, Vec<u8>) {
    // A boundary must not occur in the content; lengthen it until it does not.
    let mut boundary = String::from("auditrail-kibana-import");
    while contains(content, boundary.as_bytes()) {
        boundary.push('x');
    }
    let filename = path
        .file_name()
        .map_or_else(|| "export.ndjson".into(), |n| n.to_string_lossy())
        .replace(['"', '\r', '\n'], "_");
    let mut body = Vec::with_capacity(content.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{filename}\"\r\nContent-Type: application/ndjson\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Kibana's answer: the number imported, or an error listing what failed.
fn interpret_answer(status: u16, text: &str) -> anyhow::Result<u64> {
    let json: Option<serde_json::Value> = serde_json::from_str(text).ok();
    if !(200..300).contains(&status) {
        // Kibana's errors are {"statusCode", "error", "message"}.
        let message = json
            .as_ref()
            .and_then(|j| j.get("message"))
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| excerpt(text), str::to_owned);
        anyhow::bail!("Kibana answered HTTP {status}: {message}");
    }
    let json = json.with_context(|| format!("Kibana's answer is not JSON: {}", excerpt(text)))?;
    let imported = json
        .get("successCount")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if json.get("success").and_then(serde_json::Value::as_bool) == Some(true) {
        return Ok(imported);
    }
    let errors = json
        .get("errors")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut message = format!(
        "Kibana imported {imported} objects and reported {} errors:",
        errors.len()
    );
    for error in errors {
        write!(message, "\n  - {}", describe_error(error))?;
    }
    if errors.is_empty() {
        write!(message, " none listed; its answer: {}", excerpt(text))?;
    }
    anyhow::bail!(message)
}

/// The start of an answer that is not Kibana's JSON (a proxy's HTML page,
/// say), short enough for an error message.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// One entry of the import's `errors`: `type/id (title): kind[: message]`
/// and, for missing references, which ones.
fn describe_error(error: &serde_json::Value) -> String {
    let field = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let mut line = format!("{}/{}", field(error, "type"), field(error, "id"));
    let title = error
        .get("meta")
        .and_then(|m| m.get("title"))
        .or_else(|| error.get("title"))
        .and_then(serde_json::Value::as_str);
    if let Some(title) = title {
        let _ = write!(line, " ({title})");
    }
    let detail = error.get("error").cloned().unwrap_or_default();
    let _ = write!(line, ": {}", field(&detail, "type"));
    if let Some(message) = detail.get("message").and_then(serde_json::Value::as_str) {
        let _ = write!(line, ": {message}");
    }
    if let Some(references) = detail
        .get("references")
        .and_then(serde_json::Value::as_array)
    {
        let missing: Vec<String> = references
            .iter()
            .map(|r| format!("{}/{}", field(r, "type"), field(r, "id")))
            .collect();
        let _ = write!(line, " ({})", missing.join(", "));
    }
    line
}

#[cfg(test)]
mod tests;
