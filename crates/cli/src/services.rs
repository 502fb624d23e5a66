//! `auditrail services`: what a server offers, as gRPC reflection lists it.

use anyhow::Context as _;
use serde::Serialize;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::output::{Format, print_document};

/// `services -o json|yaml`: the service names, sorted.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Services {
    services: Vec<String>,
}

/// Prints every service name the server's reflection lists, one per line
/// (or as one document).
pub(crate) async fn run(server: &str, format: Format) -> anyhow::Result<()> {
    let channel = crate::connect(server).await?;
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .map_err(|s| crate::error::rpc("ServerReflectionInfo", &s))?
        .into_inner();
    let response = responses
        .message()
        .await
        .map_err(|s| crate::error::rpc("ServerReflectionInfo", &s))?
        .context("the server closed the reflection stream without answering")?;
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            let mut services: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
            services.sort();
            if format == Format::Text {
                for name in services {
                    println!("{name}");
                }
                Ok(())
            } else {
                print_document(format, &Services { services })
            }
        }
        Some(MessageResponse::ErrorResponse(e)) => {
            let code = tonic::Code::from_i32(e.error_code);
            anyhow::bail!(
                "reflection error: {} ({})",
                e.error_message,
                crate::error::code_name(code)
            )
        }
        other => anyhow::bail!("unexpected reflection answer: {other:?}"),
    }
}
