//! The distributor's AWS Organizations: sending invitations (handshakes) and
//! reading their states.

use aws_config::SdkConfig;
use aws_sdk_organizations::error::ProvideErrorMetadata;
use aws_sdk_organizations::operation::invite_account_to_organization::InviteAccountToOrganizationError;
use aws_sdk_organizations::types::{ActionType, Handshake, HandshakeFilter, HandshakeParty, HandshakePartyType};
use time::OffsetDateTime;

use crate::domain::{AccountId, ConstraintReason, HandshakeId, HandshakeState, RoleArn};

/// A handshake as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    pub id: HandshakeId,
    pub state: HandshakeState,
    /// The accounts among its parties (AWS names the invited account; some
    /// implementations also name the inviting one).
    pub accounts: Vec<AccountId>,
    pub requested_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Why AWS did not send an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteError {
    /// `HandshakeConstraintViolationException` with its reason.
    Constraint { reason: ConstraintReason },
    /// An open invitation for the account exists already.
    Duplicate,
    /// AWS could not be asked, or refused orglink itself.
    Unavailable { detail: String },
}

fn time(t: Option<&aws_sdk_organizations::primitives::DateTime>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t?.secs()).ok()
}

/// Reads a handshake AWS returned; `None` if it lacks what orglink needs.
pub fn handshake_info(h: &Handshake) -> Option<HandshakeInfo> {
    let accounts = h
        .parties()
        .iter()
        .filter(|p| p.r#type() == &HandshakePartyType::Account)
        .filter_map(|p| AccountId::from_bytes(p.id().as_bytes()))
        .collect();
    Some(HandshakeInfo {
        id: h.id()?.parse().ok()?,
        state: HandshakeState::from_aws(h.state()?.as_str())?,
        accounts,
        requested_at: time(h.requested_timestamp())?,
        expires_at: time(h.expiration_timestamp())?,
    })
}

#[derive(Clone)]
pub struct Distributor {
    client: aws_sdk_organizations::Client,
}

impl Distributor {
    /// Organizations as `config`'s identity (which must then be the
    /// distributor's management account).
    pub fn new(config: &SdkConfig) -> Self {
        Self { client: aws_sdk_organizations::Client::new(config) }
    }

    /// Organizations through `management_role_arn` when given (assumed, and
    /// refreshed, by the SDK), else as `config`'s own identity.
    pub async fn with_role(config: &SdkConfig, management_role_arn: Option<&RoleArn>) -> Self {
        let Some(role) = management_role_arn else { return Self::new(config) };
        let provider = aws_config::sts::AssumeRoleProvider::builder(role.to_string())
            .session_name("orglink-organizations")
            .configure(config)
            .build()
            .await;
        let config = config
            .to_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
            .build();
        Self::new(&config)
    }

    pub fn with_client(client: aws_sdk_organizations::Client) -> Self {
        Self { client }
    }

    /// Counts every Organizations call in `metrics`.
    pub fn with_metrics(self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        Self { client: super::counted(&self.client, metrics) }
    }

    /// `InviteAccountToOrganization` for `account`, with `note` shown to
    /// the owner.
    pub async fn invite(&self, account: AccountId, note: Option<&str>) -> Result<HandshakeInfo, InviteError> {
        let target = HandshakeParty::builder()
            .id(account.as_str())
            .r#type(HandshakePartyType::Account)
            .build()
            .map_err(|e| InviteError::Unavailable { detail: e.to_string() })?;
        let result =
            self.client.invite_account_to_organization().target(target).set_notes(note.map(str::to_owned)).send().await;
        match result {
            Ok(output) => output
                .handshake()
                .and_then(handshake_info)
                .ok_or_else(|| InviteError::Unavailable { detail: "AWS returned no usable handshake".into() }),
            Err(e) => Err(match e.as_service_error() {
                Some(InviteAccountToOrganizationError::HandshakeConstraintViolationException(v)) => {
                    InviteError::Constraint {
                        reason: ConstraintReason::from_aws(v.reason().map_or("", |r| r.as_str())),
                    }
                }
                Some(InviteAccountToOrganizationError::DuplicateHandshakeException(_)) => InviteError::Duplicate,
                Some(other) if other.code() == Some("DuplicateHandshakeException") => InviteError::Duplicate,
                _ => InviteError::Unavailable {
                    detail: aws_sdk_organizations::error::DisplayErrorContext(&e)
                        .to_string()
                        .chars()
                        .take(300)
                        .collect(),
                },
            }),
        }
    }

    /// Every invitation of the organization AWS still keeps, all pages
    /// read; also returns the number of pages (AWS calls).
    pub async fn invitations(&self) -> Result<(Vec<HandshakeInfo>, u32), String> {
        let mut handshakes = Vec::new();
        let mut pages = 0;
        let mut next: Option<String> = None;
        loop {
            pages += 1;
            let page = self
                .client
                .list_handshakes_for_organization()
                .filter(HandshakeFilter::builder().action_type(ActionType::InviteAccountToOrganization).build())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| aws_sdk_organizations::error::DisplayErrorContext(&e).to_string())?;
            handshakes.extend(page.handshakes().iter().filter_map(handshake_info));
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok((handshakes, pages)),
            }
        }
    }

    /// One handshake, for those the list no longer shows.
    pub async fn handshake(&self, id: &HandshakeId) -> Result<HandshakeInfo, String> {
        let output = self
            .client
            .describe_handshake()
            .handshake_id(id.as_str())
            .send()
            .await
            .map_err(|e| aws_sdk_organizations::error::DisplayErrorContext(&e).to_string())?;
        output.handshake().and_then(handshake_info).ok_or_else(|| "AWS returned no usable handshake".to_owned())
    }
}
