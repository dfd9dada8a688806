//! AWS Organizations invitations against the local emulator, where the
//! platform's account runs the distributor's organization: sending them,
//! then tracking them to their end (accepted, declined, canceled, expired by
//! orglink's clock), reminders and the queue.

use std::time::Duration;

use aws_sdk_organizations::types::{HandshakeParty, HandshakePartyType};
use orglink::app::{Actor, AppError, Command, Message, Scope, Tone, UserError};
use orglink::aws::RetryPolicy;
use orglink::domain::{BlockReason, Event, HandshakeState, LinkState, SupportTier};
use orglink::scheduler::Job;
use wiremock::{Mock, ResponseTemplate};

use crate::harness::discord::{OPS_CHANNEL, chat, message_json};
use crate::harness::{Customer, Harness, Orglink, distributor_keys, operator};

/// orglink's app as the distributor, AWS answering at once (no retries).
async fn distributor() -> Harness {
    Harness::new().aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(10) }).distributor().start().await
}

fn party(account: &str) -> HandshakeParty {
    HandshakeParty::builder().id(account).r#type(HandshakePartyType::Account).build().unwrap()
}

#[tokio::test]
async fn a_verified_standalone_account_is_invited_once() {
    let h = distributor().await;
    h.verified("666600000001", SupportTier::Basic).await;
    let reply = h.invite("666600000001").await.unwrap();
    assert_eq!(reply.tone, Tone::Success);
    assert!(matches!(&reply.messages[0], Message::Invited(v) if !v.adopted));
    let account = h.account("666600000001");
    assert_eq!(account.state, LinkState::Invited);
    let invitation = account.invitation.unwrap();
    assert!(invitation.state.is_open());
    // The expiry is AWS's, not assumed: fakecloud gives 15 days.
    let days = (invitation.expires_at - invitation.requested_at).whole_days();
    assert_eq!(days, 15);
    assert_eq!(invitation.note.as_deref(), Some("Welcome to the distributor"));
    let notified = h.notified("666600000001");
    assert_eq!(notified.iter().filter(|c| **c == "invitation_sent").count(), 1);

    // Once invited, not again.
    let err = h.invite("666600000001").await.unwrap_err();
    assert!(matches!(err, AppError::User(UserError::CannotInvite { state: LinkState::Invited, .. })), "{err:?}");
    assert_eq!(notified, ["account_registered", "role_verified", "invitation_sent"]);
    assert_eq!(h.notified("666600000001"), notified, "nothing new");
    h.finish().await;
}

#[tokio::test]
async fn an_open_invitation_sent_by_hand_is_adopted() {
    let h = distributor().await;
    h.verified("666600000002", SupportTier::Basic).await;
    let by_hand = h.organizations().invite_account_to_organization().target(party("666600000002")).send().await;
    let reply = h.invite("666600000002").await.unwrap();
    assert!(matches!(&reply.messages[0], Message::Invited(v) if v.adopted), "{reply:?}");
    let invitation = h.account("666600000002").invitation.unwrap();
    assert_eq!(invitation.handshake_id.as_str(), by_hand.unwrap().handshake().unwrap().id().unwrap());
    assert_eq!(invitation.state, HandshakeState::Open);
    assert_eq!(h.notified("666600000002"), ["account_registered", "role_verified", "invitation_sent"]);
    h.finish().await;
}

#[tokio::test]
async fn an_account_in_another_organization_is_refused_with_the_reason() {
    let h = distributor().await;
    let customer = h.verified("666600000003", SupportTier::Basic).await;
    // After verification, the account joins another organization.
    let other = Customer::new("666600000004").await;
    other.organizations.create_organization().send().await.unwrap();
    let handshake = other.organizations.invite_account_to_organization().target(party("666600000003")).send().await;
    customer
        .organizations
        .accept_handshake()
        .handshake_id(handshake.unwrap().handshake().unwrap().id().unwrap())
        .send()
        .await
        .unwrap();
    let reply = h.invite("666600000003").await.unwrap();
    assert_eq!(reply.tone, Tone::Error);
    match &reply.messages[0] {
        Message::InviteRefused(v) => assert_eq!(v.reason, "ALREADY_IN_AN_ORGANIZATION"),
        other => panic!("{other:?}"),
    }
    let account = h.account("666600000003");
    assert_eq!(account.state, LinkState::Blocked { reason: BlockReason::MemberOfAnotherOrganization });
    assert_eq!(h.notified("666600000003"), ["account_registered", "role_verified", "account_blocked"]);
    h.finish().await;
}

#[tokio::test]
async fn an_account_whose_role_is_not_verified_cannot_be_invited() {
    let h = distributor().await;
    h.register("666600000005", SupportTier::Basic);
    let err = h.invite("666600000005").await.unwrap_err();
    assert!(matches!(err, AppError::User(UserError::CannotInvite { state: LinkState::Registered, .. })));
    // A reseller cannot invite at all.
    let reseller = Actor {
        id: "discord:1".into(),
        scope: Scope::Tenant("acme".parse().unwrap()),
        rights: orglink::app::Rights { manage_server: true, ..Default::default() },
        claim_of: None,
    };
    let command = Command::Invite { account: "666600000005".parse().unwrap(), note: None };
    let err = h.app().execute(&reseller, command).await.unwrap_err();
    assert!(matches!(err, AppError::User(UserError::NotAllowed { .. })), "{err:?}");
    assert_eq!(h.notified("666600000005"), ["account_registered"]);
    h.finish().await;
}

/// The distributor's app over a store on disk, orglink's clock moved by the
/// test: the sweeps run after a restart each.
async fn tracking() -> Harness {
    Harness::new()
        .at(time::OffsetDateTime::now_utc())
        .aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) })
        .distributor()
        .on_disk()
        .start()
        .await
}

/// Restarts, runs `job`; returns what it changed and the events waiting in
/// the outbox for `account`.
async fn sweep(h: &mut Harness, job: Job, account: &str) -> (usize, Vec<Event>) {
    h.restart();
    let report = h.run(job).await;
    (report.changed, h.events(account))
}

fn count(events: &[Event], code: &str) -> usize {
    events.iter().filter(|e| e.code() == code).count()
}

#[tokio::test]
async fn an_accepted_invitation_links_the_account_once_across_sweeps_and_restarts() {
    let mut h = Harness::new()
        .at(time::OffsetDateTime::now_utc())
        .aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) })
        .distributor()
        .on_disk()
        .discord()
        .start()
        .await;
    let customer = h.invited("888800000001", SupportTier::Developer).await;
    let (changed, _) = sweep(&mut h, Job::PollHandshakes, "888800000001").await;
    assert_eq!(changed, 0, "nothing happened yet");
    h.accept("888800000001", &customer).await;

    let (changed, events) = sweep(&mut h, Job::PollHandshakes, "888800000001").await;
    assert_eq!(changed, 1);
    assert_eq!(count(&events, "account_linked"), 1);
    assert_eq!(h.state("888800000001"), LinkState::Linked);
    // A second sweep (after a restart: the store is reopened) records nothing new.
    let (changed, events) = sweep(&mut h, Job::PollHandshakes, "888800000001").await;
    assert_eq!(changed, 0);
    assert_eq!(count(&events, "account_linked"), 1);

    // Delivered to the recorder standing in for Discord: the link reaches
    // the tenant's channel and the operations channel once each, however
    // many delivery rounds run.
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_json(OPS_CHANNEL)))
        .mount(&h.discord().server)
        .await;
    let tenant_channel = "900000000000000002";
    let configure = Command::Configure { channel: Some(chat(tenant_channel)), language: None, account_role: None };
    let as_tenant = Actor { scope: Scope::Tenant("acme".parse().unwrap()), ..operator() };
    h.app().handle(&as_tenant, configure).unwrap();
    let notifier = h.notifier();
    notifier.deliver_due().await.unwrap();
    notifier.deliver_due().await.unwrap();
    let posted: Vec<(String, String)> = h
        .discord()
        .requests()
        .await
        .into_iter()
        .map(|r| (r.url.path().to_owned(), String::from_utf8_lossy(&r.body).to_string()))
        .collect();
    let linked =
        |channel: &str| posted.iter().filter(|(p, body)| p.contains(channel) && body.contains("is linked:")).count();
    assert_eq!(linked(tenant_channel), 1, "{posted:?}");
    assert_eq!(linked(OPS_CHANNEL), 1, "{posted:?}");
    assert!(h.outbox().is_empty());
    h.finish().await;
}

#[tokio::test]
async fn declined_and_canceled_invitations_are_recorded() {
    let mut h = tracking().await;
    let declining = h.invited("888800000002", SupportTier::Developer).await;
    h.invited("888800000003", SupportTier::Developer).await;
    let declined = h.handshake("888800000002");
    declining.organizations.decline_handshake().handshake_id(&declined).send().await.unwrap();
    let canceled = h.handshake("888800000003");
    h.organizations().cancel_handshake().handshake_id(&canceled).send().await.unwrap();

    let (_, events) = sweep(&mut h, Job::PollHandshakes, "888800000002").await;
    assert_eq!(count(&events, "invitation_declined"), 1);
    assert_eq!(h.state("888800000002"), LinkState::InvitationDeclined);
    let (_, events) = sweep(&mut h, Job::PollHandshakes, "888800000003").await;
    assert_eq!(count(&events, "invitation_canceled"), 1);
    assert_eq!(h.state("888800000003"), LinkState::InvitationCanceled);
    h.finish().await;
}

#[tokio::test]
async fn an_invitation_open_past_its_expiry_is_expired_by_the_clock() {
    let mut h = tracking().await;
    h.invited("888800000004", SupportTier::Developer).await;
    h.expire("888800000004");
    let (changed, events) = sweep(&mut h, Job::PollHandshakes, "888800000004").await;
    assert_eq!(changed, 1);
    assert_eq!(count(&events, "invitation_expired"), 1);
    assert_eq!(h.state("888800000004"), LinkState::InvitationExpired);
    assert_eq!(h.account("888800000004").invitation.unwrap().state, HandshakeState::Expired);
    h.finish().await;
}

#[tokio::test]
async fn reminders_go_out_once_per_threshold() {
    let mut h = tracking().await;
    h.invited("888800000005", SupportTier::Developer).await;
    assert_eq!(sweep(&mut h, Job::RemindInvitations, "888800000005").await.0, 0, "15 days left");
    h.clock().advance(time::Duration::days(8) + time::Duration::hours(12));
    let (changed, events) = sweep(&mut h, Job::RemindInvitations, "888800000005").await;
    assert_eq!(changed, 1);
    assert_eq!(count(&events, "invitation_reminder"), 1);
    assert_eq!(sweep(&mut h, Job::RemindInvitations, "888800000005").await.0, 0, "not twice");
    h.clock().advance(time::Duration::days(5));
    let (changed, events) = sweep(&mut h, Job::RemindInvitations, "888800000005").await;
    assert_eq!(changed, 1);
    assert_eq!(count(&events, "invitation_reminder"), 2);
    match events.iter().rev().find(|e| e.code() == "invitation_reminder").unwrap() {
        Event::InvitationReminder { days_left, .. } => assert_eq!(*days_left, 1),
        other => panic!("{other:?}"),
    }
    h.finish().await;
}

#[tokio::test]
async fn automatic_mode_invites_as_soon_as_the_role_is_verified() {
    let h = Harness::new()
        .at(time::OffsetDateTime::now_utc())
        .aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) })
        .distributor()
        .settings(|s| s.auto_send_invitations = true)
        .start()
        .await;
    h.register("888800000006", SupportTier::Basic);
    let (_, arn) = h.role_for("888800000006").await;
    let verify = Command::VerifyRole {
        account: "888800000006".parse().unwrap(),
        arn: Some(arn.parse().unwrap()),
        description: None,
    };
    let reply = h.app().execute(&operator(), verify).await.unwrap();
    assert_eq!(reply.messages.len(), 2, "the verification, then the invitation");
    assert_eq!(h.state("888800000006"), LinkState::Invited);
    assert_eq!(h.notified("888800000006"), ["account_registered", "role_verified", "invitation_sent"]);
    h.finish().await;
}

#[tokio::test]
async fn orglink_sweep_runs_the_jobs_once() {
    let o = Orglink::new().aws(distributor_keys().await);
    let run = o.run(&["sweep", "--job", "poll-everything"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("poll_handshakes, remind_invitations, send_queued_invitations"), "{}", run.stderr);
    let out = o.ok(&["sweep"]);
    // Every job but operations' digest, which goes out on its schedule or
    // when named, and the backup, which runs only with backup.dir
    // (tests/it/backup.rs).
    assert!(!out.contains("backup:"), "{out}");
    for job in Job::ALL.into_iter().filter(|&job| job != Job::OpsDigest && job != Job::Backup) {
        assert!(out.contains(&format!("{}: 0 tracked", job.name())), "{out}");
    }
    assert!(!out.contains("ops_digest"), "{out}");
    let out = o.ok(&["sweep", "--job", "poll_handshakes", "--lang", "es"]);
    assert!(out.contains("poll_handshakes: 0 seguidas") && !out.contains("remind"), "{out}");
}

#[tokio::test]
async fn linked_accounts_without_the_right_support_plan_group_are_warned_until_fixed() {
    let mut h = tracking().await;
    let customer = h.invited("888800000007", SupportTier::Developer).await;
    h.accept("888800000007", &customer).await;
    // On linking: at once, a warning (no group yet).
    let (_, events) = sweep(&mut h, Job::PollHandshakes, "888800000007").await;
    assert_eq!(count(&events, "support_plan_attention"), 1);
    assert_eq!(count(&events, "business_support_linked"), 0, "developer support");
    // Each audit warns again while it is wrong.
    let (warned, events) = sweep(&mut h, Job::AuditSupportPlans, "888800000007").await;
    assert_eq!(warned, 1);
    assert_eq!(count(&events, "support_plan_attention"), 2);
    let set = |group: &str| Command::SetSupportPlan {
        account: "888800000007".parse().unwrap(),
        group: group.parse().unwrap(),
    };
    h.app().handle(&operator(), set("business")).unwrap();
    let (warned, events) = sweep(&mut h, Job::AuditSupportPlans, "888800000007").await;
    assert_eq!(warned, 1, "Business Support does not match Developer support");
    match events.iter().rev().find(|e| e.code() == "support_plan_attention").unwrap() {
        Event::SupportPlanAttention { group, expected, .. } => {
            assert_eq!(*group, Some(orglink::domain::SupportPlanGroup::BusinessSupport));
            assert_eq!(*expected, orglink::domain::SupportPlanGroup::Passthrough);
        }
        other => panic!("{other:?}"),
    }
    h.restart();
    h.app().handle(&operator(), set("passthrough")).unwrap();
    let (warned, _) = sweep(&mut h, Job::AuditSupportPlans, "888800000007").await;
    assert_eq!(warned, 0, "fixed: the warnings stop");
    h.finish().await;
}
