//! S3: where `orglink publish-template` puts the generic role template.

use aws_config::SdkConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;

use crate::domain::Partition;
use crate::domain::quick_create::{BucketName, ObjectKey, s3_object_url};

/// Uploads the template with orglink's own identity, built from the same
/// SDK configuration as every other AWS client (its endpoint, credentials
/// and region; `AWS_ENDPOINT_URL` included).
#[derive(Debug, Clone)]
pub struct TemplateBucket {
    client: aws_sdk_s3::Client,
    /// The endpoint configured instead of AWS's own, if any: the object's
    /// URL is then under it, path-style.
    endpoint: Option<String>,
    region: String,
}

/// Why an upload failed: S3's error code and message, or the SDK's words
/// when S3 did not answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

impl TemplateBucket {
    /// A client from `sdk`, in `region` (else the SDK's region, else
    /// `us-east-1`). An endpoint of its own (a local stand-in) is addressed
    /// path-style: a bucket's name as a host name resolves nowhere there.
    pub fn new(sdk: &SdkConfig, region: Option<String>) -> Self {
        let region =
            region.or_else(|| sdk.region().map(|r| r.as_ref().to_owned())).unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = sdk.endpoint_url().map(str::to_owned);
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .region(aws_sdk_s3::config::Region::new(region.clone()))
            .force_path_style(endpoint.is_some())
            .build();
        Self { client: aws_sdk_s3::Client::from_conf(config), endpoint, region }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Puts `body` at `bucket`/`key` as YAML; answers the object's URL.
    pub async fn publish(
        &self,
        partition: Partition,
        bucket: &BucketName,
        key: &ObjectKey,
        body: String,
    ) -> Result<String, PublishError> {
        self.client
            .put_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .content_type("application/x-yaml")
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .map_err(|e| match (e.code(), e.message()) {
                (Some(code), Some(message)) => PublishError(format!("{code}: {message}")),
                (Some(code), None) => PublishError(code.to_owned()),
                _ => PublishError(DisplayErrorContext(&e).to_string()),
            })?;
        Ok(s3_object_url(partition, &self.region, bucket.as_str(), key.as_str(), self.endpoint.as_deref()))
    }
}
