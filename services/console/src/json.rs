//! The JSON of the API's answers: the proto3 JSON mapping of the very
//! messages the RPCs return (lowerCamelCase names, enums by name,
//! timestamps in RFC 3339, 64-bit integers as strings, bytes in base64),
//! with default values written out so that a client never guesses
//! whether a field was left out. The contract in `proto/` is therefore
//! also the API's documentation.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::error::ApiError;

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(auditrail_proto::FILE_DESCRIPTOR_SET).ok());

/// `message`, the `auditrail.v1` message `name`, in the proto3 JSON mapping.
pub fn to_json<M: prost::Message>(message: &M, name: &str) -> Result<serde_json::Value, ApiError> {
    let internal = |why: String| ApiError {
        code: tonic::Code::Internal,
        message: why,
    };
    let pool = POOL
        .as_ref()
        .ok_or_else(|| internal("the contract's descriptors do not decode".to_owned()))?;
    let descriptor = pool
        .get_message_by_name(&format!("auditrail.v1.{name}"))
        .ok_or_else(|| internal(format!("no message {name} in the contract")))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| internal(format!("{name}: {e}")))?;
    let options = SerializeOptions::new().skip_default_fields(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| internal(format!("{name}: {e}")))
}

#[cfg(test)]
mod tests {
    use auditrail_proto::v1;

    use super::*;

    #[test]
    fn messages_map_to_proto3_json_with_defaults() {
        let page = v1::SearchResponse {
            events: vec![v1::AuditEvent {
                id: "ab".to_owned(),
                r#type: v1::EventType::Kube.into(),
                response_code: 201,
                stage_timestamp: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                ..v1::AuditEvent::default()
            }],
            total_hits: 1,
            ..v1::SearchResponse::default()
        };
        let json = to_json(&page, "SearchResponse").unwrap();
        assert_eq!(json["totalHits"], "1");
        assert_eq!(json["nextPageToken"], "");
        assert_eq!(json["events"][0]["type"], "EVENT_TYPE_KUBE");
        assert_eq!(json["events"][0]["responseCode"], 201);
        assert_eq!(json["events"][0]["stageTimestamp"], "2023-11-14T22:13:20Z");
    }
}
