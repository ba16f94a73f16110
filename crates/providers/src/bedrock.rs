//! AWS Bedrock Runtime Converse (reference §7): `POST {base}/model/{modelId}/converse` on
//! `bedrock-runtime.{region}.amazonaws.com`, with `inferenceConfig.maxTokens`.
//!
//! Auth is SigV4 with the signing name `bedrock` (not `bedrock-runtime`), computed by the AWS
//! SDK's own signer (`aws-sigv4`); a session token goes in `X-Amz-Security-Token` (signed, as
//! the SDK does). A Bedrock API key goes as `Authorization: Bearer` instead. The model id is a
//! URI label, so `:` and `/` are percent-encoded (`…-v1%3A0`).
//!
//! Quirks: errors are rest-json, the name in `x-amzn-ErrorType`, the text in `message` (or
//! `Message`, capitalized, for a bad API key). A bad key is a **403**
//! (`UnrecognizedClientException`, `InvalidSignatureException`, "Authentication failed"),
//! while `AccessDeniedException` (403) is a missing model grant or IAM permission; an unknown
//! model is a **400** `ValidationException`.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use domain::provider::{CredentialSecret, Provider, ProviderModelId};
use domain::values::AwsRegion;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrets::Secret;
use serde_json::{Value, json};

use crate::OutcomeClass;
use crate::classify::{ErrorInfo, Verdict, by_status, json_object, rejected_request};
use crate::http::{Call, Reply};
use crate::{TEST_MAX_TOKENS, TEST_PROMPT, join};

/// The SigV4 signing name of Bedrock Runtime (`metadata.signingName` in the service model).
pub(crate) const SIGNING_NAME: &str = "bedrock";

/// A URI label keeps only unreserved characters: `:` becomes `%3A`, `/` becomes `%2F`.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn call(
    base: &str,
    region: &AwsRegion,
    model: &ProviderModelId,
    credential: Option<&CredentialSecret>,
    now: SystemTime,
) -> Result<Call, Verdict> {
    let path = format!(
        "/model/{}/converse",
        utf8_percent_encode(model.as_str(), LABEL)
    );
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": TEST_PROMPT}]}],
        "inferenceConfig": {"maxTokens": TEST_MAX_TOKENS},
    });
    let mut call = Call::json(join(base, &path)?, &body);
    match credential {
        Some(CredentialSecret::BedrockApiKey(key)) => {
            // Built inside a Secret, so the copy is wiped on drop too.
            let bearer = Secret::new(format!("Bearer {}", key.expose_secret()));
            call.secret_header(AUTHORIZATION, bearer.expose_secret())?;
        }
        Some(CredentialSecret::AwsAccessKey {
            access_key_id,
            secret_access_key,
            session_token,
        }) => {
            let keys = AwsKeys {
                access_key_id,
                secret_access_key: secret_access_key.expose_secret(),
                session_token: session_token.as_ref().map(|t| t.expose_secret()),
            };
            let signed = sigv4_headers(
                "POST",
                &call.url,
                &[("content-type", "application/json")],
                &call.body,
                &keys,
                region.as_str(),
                SIGNING_NAME,
                now,
            )
            .map_err(|e| Verdict::new(OutcomeClass::AuthInvalid, e))?;
            for (name, mut value) in signed {
                value.set_sensitive(true);
                call.headers.push((name, value));
            }
        }
        Some(CredentialSecret::ApiKey(_)) => {
            return Err(crate::wrong_credential(Provider::Bedrock));
        }
        None => {
            return Err(Verdict::new(
                OutcomeClass::AuthInvalid,
                format!(
                    "no credential was given; AWS Bedrock needs {}",
                    Provider::Bedrock.credential_fields()
                ),
            ));
        }
    }
    Ok(call)
}

/// The parts of an IAM key pair SigV4 needs.
pub(crate) struct AwsKeys<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
    pub(crate) session_token: Option<&'a str>,
}

/// The headers SigV4 adds to a request (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` with a session token), signed with the SDK's default settings.
/// `headers` are the request's own headers to sign besides `host`, which comes from `url`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sigv4_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    keys: &AwsKeys<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let identity = Credentials::new(
        keys.access_key_id,
        keys.secret_access_key,
        keys.session_token.map(str::to_owned),
        None,
        "modelreg",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("could not sign the request: {e}"))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("could not sign the request: {e}"))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| format!("could not sign the request: {e}"))?
        .into_parts();
    let (signed_headers, _query) = instructions.into_parts();
    signed_headers
        .into_iter()
        .map(|header| {
            let value = HeaderValue::from_str(header.value()).map_err(|_| {
                "the credential holds characters that cannot be sent in an HTTP header".to_owned()
            })?;
            Ok((HeaderName::from_static(header.name()), value))
        })
        .collect()
}

pub(crate) fn classify(reply: &Reply) -> Verdict {
    if !reply.is_success() {
        let info = ErrorInfo::read(reply);
        let class = match (reply.status, info.kind.as_deref()) {
            (_, Some("AccessDeniedException"))
                if !info.message_contains("authentication failed") =>
            {
                OutcomeClass::PermissionDenied
            }
            (403, _) => OutcomeClass::AuthInvalid,
            (_, Some("ValidationException")) => rejected_model(&info),
            (_, Some("ResourceNotFoundException")) => OutcomeClass::ModelNotFound,
            (_, Some("ThrottlingException")) => OutcomeClass::RateLimited,
            (_, Some("ServiceQuotaExceededException")) => OutcomeClass::QuotaExceeded,
            (_, Some("ModelTimeoutException")) => OutcomeClass::Timeout,
            (
                _,
                Some(
                    "ModelNotReadyException"
                    | "ModelErrorException"
                    | "InternalServerException"
                    | "ServiceUnavailableException",
                ),
            ) => OutcomeClass::ProviderUnavailable,
            (400, _) => rejected_model(&info),
            _ => by_status(reply.status, &info),
        };
        return Verdict::from_error(reply, &info, class);
    }
    let body = match json_object(reply, "a Converse response") {
        Ok(body) => body,
        Err(verdict) => return verdict,
    };
    // Any stop reason counts, `max_tokens` included.
    let is_converse = body
        .get("output")
        .and_then(|o| o.get("message"))
        .is_some_and(Value::is_object)
        && body.get("stopReason").is_some_and(Value::is_string);
    match is_converse {
        true => Verdict::ok(reply),
        false => Verdict::not_the_shape(reply, "a Converse response (output.message, stopReason)"),
    }
}

/// A `ValidationException` for our minimal request is about the model id ("The provided model
/// identifier is invalid.", "on-demand throughput isn't supported") unless it names a
/// parameter.
fn rejected_model(info: &ErrorInfo) -> OutcomeClass {
    match rejected_request(info) {
        OutcomeClass::UnsupportedParameter if !info.message_contains("model") => {
            OutcomeClass::UnsupportedParameter
        }
        _ => OutcomeClass::ModelNotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The worked example of the AWS SigV4 documentation (IAM `ListUsers`, 2015-08-30): our
    /// use of the signer reproduces the published signature.
    #[test]
    fn signing_reproduces_the_documented_aws_example() {
        let keys = AwsKeys {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
        };
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 20150830T123600Z
        let headers = sigv4_headers(
            "GET",
            "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            b"",
            &keys,
            "us-east-1",
            "iam",
            time,
        )
        .expect("signed");
        let authorization = headers
            .iter()
            .find(|(name, _)| name == AUTHORIZATION)
            .and_then(|(_, value)| value.to_str().ok())
            .expect("authorization");
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn model_ids_are_uri_labels() {
        let encoded = utf8_percent_encode(
            "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-v1:0",
            LABEL,
        )
        .to_string();
        assert_eq!(
            encoded,
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.anthropic.claude-v1%3A0"
        );
    }
}
