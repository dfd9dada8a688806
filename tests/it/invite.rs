//! Sending AWS Organizations invitations, against the local emulator: the
//! platform account runs the distributor's organization.

use crate::harness;
use crate::harness::aws as aws_harness;

use std::sync::Arc;
use std::time::Duration;

use aws_harness::*;
use aws_sdk_organizations::types::{HandshakeParty, HandshakePartyType};
use orglink::app::{Actor, App, AppError, Command, Message, Reply, Settings, Tone, UserError};
use orglink::aws::organizations::Distributor;
use orglink::aws::{Aws, RetryPolicy};
use orglink::clock::SystemClock;
use orglink::domain::{BlockReason, Event, HandshakeState, LinkState, SupportTier};
use orglink::store::Store;

struct Platform {
    app: App,
    store: Store,
    organizations: aws_sdk_organizations::Client,
}

async fn platform() -> Platform {
    let e = emulator();
    let keys = distributor_keys().await;
    let config = e.sdk_config(keys);
    let aws = Aws::new(config.clone(), RetryPolicy { retries: 0, first_delay: Duration::from_millis(10) });
    let store = Store::temporary().unwrap();
    let settings = Settings { cross_account_id: PLATFORM.parse().unwrap(), ..Settings::default() };
    let app = App::new(store.clone(), settings, Arc::new(SystemClock))
        .with_aws(aws)
        .with_distributor(Distributor::new(&config));
    Platform { app, store, organizations: aws_sdk_organizations::Client::new(&config) }
}

impl Platform {
    /// Registers `account` and verifies the role its owner created.
    async fn verified(&self, account: &str) -> Customer {
        let new = harness::new_account(account, "acme", SupportTier::Basic);
        let ops = Actor::operator("ops");
        self.app.handle(&ops, Command::AddAccount(new)).unwrap();
        let external_id = self.store.account(account.parse().unwrap()).unwrap().unwrap().external_id;
        let customer = Customer::new(account).await;
        let arn = customer.create_instructed_role(external_id.as_str()).await;
        let verify = Command::VerifyRole {
            account: account.parse().unwrap(),
            arn: Some(arn.parse().unwrap()),
            description: None,
        };
        self.app.execute(&ops, verify).await.unwrap();
        customer
    }

    async fn invite(&self, account: &str) -> Result<Reply, AppError> {
        let command = Command::Invite {
            account: account.parse().unwrap(),
            note: Some("Welcome to the distributor".parse().unwrap()),
        };
        self.app.execute(&Actor::operator("ops"), command).await
    }
}

#[tokio::test]
async fn a_verified_standalone_account_is_invited_once() {
    let p = platform().await;
    p.verified("666600000001").await;
    let reply = p.invite("666600000001").await.unwrap();
    assert_eq!(reply.tone, Tone::Success);
    assert!(matches!(&reply.messages[0], Message::Invited(v) if !v.adopted));
    let account = p.store.account("666600000001".parse().unwrap()).unwrap().unwrap();
    assert_eq!(account.state, LinkState::Invited);
    let invitation = account.invitation.unwrap();
    assert!(invitation.state.is_open());
    // The expiry is AWS's, not assumed: fakecloud gives 15 days.
    let days = (invitation.expires_at - invitation.requested_at).whole_days();
    assert_eq!(days, 15);
    assert_eq!(invitation.note.as_deref(), Some("Welcome to the distributor"));
    let sent: Vec<_> =
        p.store.outbox().unwrap().into_iter().filter(|i| matches!(i.event, Event::InvitationSent { .. })).collect();
    assert_eq!(sent.len(), 1);

    // Once invited, not again.
    let err = p.invite("666600000001").await.unwrap_err();
    assert!(matches!(err, AppError::User(UserError::CannotInvite { state: LinkState::Invited, .. })), "{err:?}");
}

#[tokio::test]
async fn an_open_invitation_sent_by_hand_is_adopted() {
    let p = platform().await;
    p.verified("666600000002").await;
    let target = HandshakeParty::builder().id("666600000002").r#type(HandshakePartyType::Account).build().unwrap();
    let by_hand = p.organizations.invite_account_to_organization().target(target).send().await.unwrap();
    let reply = p.invite("666600000002").await.unwrap();
    assert!(matches!(&reply.messages[0], Message::Invited(v) if v.adopted), "{reply:?}");
    let invitation = p.store.account("666600000002".parse().unwrap()).unwrap().unwrap().invitation.unwrap();
    assert_eq!(invitation.handshake_id.as_str(), by_hand.handshake().unwrap().id().unwrap());
    assert_eq!(invitation.state, HandshakeState::Open);
}

#[tokio::test]
async fn an_account_in_another_organization_is_refused_with_the_reason() {
    let p = platform().await;
    let customer = p.verified("666600000003").await;
    // After verification, the account joins another organization.
    let other = Customer::new("666600000004").await;
    other.organizations.create_organization().send().await.unwrap();
    let target = HandshakeParty::builder().id("666600000003").r#type(HandshakePartyType::Account).build().unwrap();
    let handshake = other.organizations.invite_account_to_organization().target(target).send().await.unwrap();
    customer
        .organizations
        .accept_handshake()
        .handshake_id(handshake.handshake().unwrap().id().unwrap())
        .send()
        .await
        .unwrap();
    let reply = p.invite("666600000003").await.unwrap();
    assert_eq!(reply.tone, Tone::Error);
    match &reply.messages[0] {
        Message::InviteRefused(v) => assert_eq!(v.reason, "ALREADY_IN_AN_ORGANIZATION"),
        other => panic!("{other:?}"),
    }
    let account = p.store.account("666600000003".parse().unwrap()).unwrap().unwrap();
    assert_eq!(account.state, LinkState::Blocked { reason: BlockReason::MemberOfAnotherOrganization });
}

#[tokio::test]
async fn an_account_whose_role_is_not_verified_cannot_be_invited() {
    let p = platform().await;
    let new = harness::new_account("666600000005", "acme", SupportTier::Basic);
    p.app.handle(&Actor::operator("ops"), Command::AddAccount(new)).unwrap();
    let err = p.invite("666600000005").await.unwrap_err();
    assert!(matches!(err, AppError::User(UserError::CannotInvite { state: LinkState::Registered, .. })));
    // A reseller cannot invite at all.
    let reseller = Actor {
        id: "discord:1".into(),
        scope: orglink::app::Scope::Tenant("acme".parse().unwrap()),
        rights: orglink::app::Rights { manage_server: true, ..Default::default() },
    };
    let command = Command::Invite { account: "666600000005".parse().unwrap(), note: None };
    let err = p.app.execute(&reseller, command).await.unwrap_err();
    assert!(matches!(err, AppError::User(UserError::NotAllowed { .. })), "{err:?}");
}
