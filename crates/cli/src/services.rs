//! `auditrail services`: what a server offers, as gRPC reflection lists it.

use anyhow::Context as _;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// Prints every service name the server's reflection lists, one per line.
pub(crate) async fn run(server: &str) -> anyhow::Result<()> {
    let channel = crate::connect(server).await?;
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .context("reflection call failed")?
        .into_inner();
    let response = responses
        .message()
        .await
        .context("reflection stream failed")?
        .context("the server closed the reflection stream without answering")?;
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            for name in names {
                println!("{name}");
            }
            Ok(())
        }
        Some(MessageResponse::ErrorResponse(e)) => {
            anyhow::bail!("reflection error {}: {}", e.error_code, e.error_message)
        }
        other => anyhow::bail!("unexpected reflection answer: {other:?}"),
    }
}
