//! Tracking invitations to their end, reminders and the queue, against the
//! local AWS emulator with orglink's clock moved by the test.

use crate::harness;
use crate::harness::aws as aws_harness;
use crate::harness::discord as discord_harness;

use std::sync::Arc;
use std::time::Duration;

use aws_harness::*;
use orglink::app::{Actor, App, Command, Settings};
use orglink::aws::organizations::Distributor;
use orglink::aws::{Aws, RetryPolicy};
use orglink::clock::ManualClock;
use orglink::domain::{Event, HandshakeState, LinkState, SupportTier};
use orglink::scheduler::Job;
use orglink::store::Store;

struct Setup {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    settings: Settings,
    organizations: aws_sdk_organizations::Client,
}

impl Setup {
    async fn new() -> Self {
        let keys = distributor_keys().await;
        Self {
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(time::OffsetDateTime::now_utc())),
            settings: Settings { cross_account_id: PLATFORM.parse().unwrap(), ..Settings::default() },
            organizations: aws_sdk_organizations::Client::new(&emulator().sdk_config(keys)),
        }
    }

    /// The app over the store on disk: each call is a fresh start, as after
    /// a restart.
    async fn app(&self) -> App {
        let e = emulator();
        let config = e.sdk_config(distributor_keys().await);
        let store = Store::open(self.dir.path()).unwrap();
        App::new(store, self.settings.clone(), self.clock.clone())
            .with_aws(Aws::new(config.clone(), RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) }))
            .with_distributor(Distributor::new(&config))
    }

    /// Registers, verifies and invites `account`; returns its owner.
    async fn invited(&self, account: &str) -> Customer {
        let app = self.app().await;
        let ops = Actor::operator("ops");
        let new = harness::new_account(account, "acme", SupportTier::Developer);
        app.handle(&ops, Command::AddAccount(new)).unwrap();
        let external_id = app.store().account(account.parse().unwrap()).unwrap().unwrap().external_id;
        let customer = Customer::new(account).await;
        let arn = customer.create_instructed_role(external_id.as_str()).await;
        let verify = Command::VerifyRole {
            account: account.parse().unwrap(),
            arn: Some(arn.parse().unwrap()),
            description: None,
        };
        app.execute(&ops, verify).await.unwrap();
        app.execute(&ops, Command::Invite { account: account.parse().unwrap(), note: None }).await.unwrap();
        app.store().flush().unwrap();
        customer
    }

    async fn handshake_id(&self, account: &str) -> String {
        let app = self.app().await;
        app.store().account(account.parse().unwrap()).unwrap().unwrap().invitation.unwrap().handshake_id.to_string()
    }

    /// Runs `job` on a freshly opened store; returns (changed, events
    /// waiting in the outbox for `account`).
    async fn sweep(&self, job: Job, account: &str) -> (usize, Vec<Event>) {
        let app = self.app().await;
        let report = app.run_job(job).await.unwrap();
        app.store().flush().unwrap();
        let id = account.parse().unwrap();
        let events = app.store().outbox().unwrap().into_iter().map(|i| i.event).filter(|e| e.account() == id).collect();
        (report.changed, events)
    }

    async fn state(&self, account: &str) -> LinkState {
        self.app().await.store().account(account.parse().unwrap()).unwrap().unwrap().state
    }
}

fn count(events: &[Event], code: &str) -> usize {
    events.iter().filter(|e| e.code() == code).count()
}

#[tokio::test]
async fn an_accepted_invitation_links_the_account_once_across_sweeps_and_restarts() {
    let s = Setup::new().await;
    let customer = s.invited("888800000001").await;
    let (changed, _) = s.sweep(Job::PollHandshakes, "888800000001").await;
    assert_eq!(changed, 0, "nothing happened yet");
    let handshake = s.handshake_id("888800000001").await;
    customer.organizations.accept_handshake().handshake_id(&handshake).send().await.unwrap();

    let (changed, events) = s.sweep(Job::PollHandshakes, "888800000001").await;
    assert_eq!(changed, 1);
    assert_eq!(count(&events, "account_linked"), 1);
    assert_eq!(s.state("888800000001").await, LinkState::Linked);
    // A second sweep (after a restart: the store is reopened) records nothing new.
    let (changed, events) = s.sweep(Job::PollHandshakes, "888800000001").await;
    assert_eq!(changed, 0);
    assert_eq!(count(&events, "account_linked"), 1);

    // Delivered to a recorder standing in for Discord: the link reaches the
    // tenant's channel and the operations channel once each, however many
    // delivery rounds run.
    let discord = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(discord_harness::message_json(discord_harness::OPS_CHANNEL)),
        )
        .mount(&discord)
        .await;
    let app = s.app().await;
    let tenant_channel = "900000000000000002";
    let actor = Actor::operator("ops");
    let configure =
        Command::Configure { channel: Some(discord_harness::chat(tenant_channel)), language: None, account_role: None };
    let as_tenant = Actor { scope: orglink::app::Scope::Tenant("acme".parse().unwrap()), ..actor };
    app.handle(&as_tenant, configure).unwrap();
    let config = discord_harness::config(&discord.uri(), &"00".repeat(32));
    let notifier = orglink::discord::notify::Notifier {
        store: app.store().clone(),
        http: Arc::new(orglink::discord::http_client(&config.discord)),
        templates: orglink::templates::Templates::embedded(),
        ops_channel: config.discord.ops_channel_id,
        default_lang: orglink::domain::Lang::En,
        clock: s.clock.clone(),
        timeout: orglink::discord::notify::DISCORD_TIMEOUT,
    };
    notifier.deliver_due().await.unwrap();
    notifier.deliver_due().await.unwrap();
    let posted: Vec<(String, String)> = discord
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.url.path().to_owned(), String::from_utf8_lossy(&r.body).to_string()))
        .collect();
    let linked =
        |channel: &str| posted.iter().filter(|(p, body)| p.contains(channel) && body.contains("is linked:")).count();
    assert_eq!(linked(tenant_channel), 1, "{posted:?}");
    assert_eq!(linked(discord_harness::OPS_CHANNEL), 1, "{posted:?}");
    assert!(app.store().outbox().unwrap().is_empty());
}

#[tokio::test]
async fn declined_and_canceled_invitations_are_recorded() {
    let s = Setup::new().await;
    let declining = s.invited("888800000002").await;
    s.invited("888800000003").await;
    let declined = s.handshake_id("888800000002").await;
    declining.organizations.decline_handshake().handshake_id(&declined).send().await.unwrap();
    let canceled = s.handshake_id("888800000003").await;
    s.organizations.cancel_handshake().handshake_id(&canceled).send().await.unwrap();

    let (_, events) = s.sweep(Job::PollHandshakes, "888800000002").await;
    assert_eq!(count(&events, "invitation_declined"), 1);
    assert_eq!(s.state("888800000002").await, LinkState::InvitationDeclined);
    let (_, events) = s.sweep(Job::PollHandshakes, "888800000003").await;
    assert_eq!(count(&events, "invitation_canceled"), 1);
    assert_eq!(s.state("888800000003").await, LinkState::InvitationCanceled);
}

#[tokio::test]
async fn an_invitation_open_past_its_expiry_is_expired_by_the_clock() {
    let s = Setup::new().await;
    s.invited("888800000004").await;
    s.clock.advance(time::Duration::days(15) + time::Duration::hours(1));
    let (changed, events) = s.sweep(Job::PollHandshakes, "888800000004").await;
    assert_eq!(changed, 1);
    assert_eq!(count(&events, "invitation_expired"), 1);
    assert_eq!(s.state("888800000004").await, LinkState::InvitationExpired);
    let app = s.app().await;
    let invitation = app.store().account("888800000004".parse().unwrap()).unwrap().unwrap().invitation.unwrap();
    assert_eq!(invitation.state, HandshakeState::Expired);
}

#[tokio::test]
async fn reminders_go_out_once_per_threshold() {
    let s = Setup::new().await;
    s.invited("888800000005").await;
    assert_eq!(s.sweep(Job::RemindInvitations, "888800000005").await.0, 0, "15 days left");
    s.clock.advance(time::Duration::days(8) + time::Duration::hours(12));
    let (changed, events) = s.sweep(Job::RemindInvitations, "888800000005").await;
    assert_eq!(changed, 1);
    assert_eq!(count(&events, "invitation_reminder"), 1);
    assert_eq!(s.sweep(Job::RemindInvitations, "888800000005").await.0, 0, "not twice");
    s.clock.advance(time::Duration::days(5));
    let (changed, events) = s.sweep(Job::RemindInvitations, "888800000005").await;
    assert_eq!(changed, 1);
    assert_eq!(count(&events, "invitation_reminder"), 2);
    match events.iter().rev().find(|e| e.code() == "invitation_reminder").unwrap() {
        Event::InvitationReminder { days_left, .. } => assert_eq!(*days_left, 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn automatic_mode_invites_as_soon_as_the_role_is_verified() {
    let mut s = Setup::new().await;
    s.settings.auto_send_invitations = true;
    let app = s.app().await;
    let ops = Actor::operator("ops");
    let new = harness::new_account("888800000006", "acme", SupportTier::Basic);
    app.handle(&ops, Command::AddAccount(new)).unwrap();
    let external_id = app.store().account("888800000006".parse().unwrap()).unwrap().unwrap().external_id;
    let customer = Customer::new("888800000006").await;
    let arn = customer.create_instructed_role(external_id.as_str()).await;
    let verify = Command::VerifyRole {
        account: "888800000006".parse().unwrap(),
        arn: Some(arn.parse().unwrap()),
        description: None,
    };
    let reply = app.execute(&ops, verify).await.unwrap();
    assert_eq!(reply.messages.len(), 2, "the verification, then the invitation");
    assert_eq!(app.store().account("888800000006".parse().unwrap()).unwrap().unwrap().state, LinkState::Invited);
}

#[tokio::test]
async fn orglink_sweep_runs_the_jobs_once() {
    let dir = tempfile::tempdir().unwrap();
    let keys = distributor_keys().await;
    let run = |args: &[&str]| run_orglink(env!("CARGO_BIN_EXE_orglink"), dir.path(), keys, args);
    let (code, _, err) = run(&["sweep", "--job", "poll-everything"]);
    assert_eq!(code, 2);
    assert!(err.contains("poll_handshakes, remind_invitations, send_queued_invitations"), "{err}");
    let (code, out, err) = run(&["sweep"]);
    assert_eq!(code, 0, "{err}");
    for job in Job::ALL {
        assert!(out.contains(&format!("{}: 0 tracked", job.name())), "{out}");
    }
    let (code, out, _) = run(&["sweep", "--job", "poll_handshakes", "--lang", "es"]);
    assert_eq!(code, 0);
    assert!(out.contains("poll_handshakes: 0 seguidas") && !out.contains("remind"), "{out}");
}

#[tokio::test]
async fn linked_accounts_without_the_right_support_plan_group_are_warned_until_fixed() {
    let s = Setup::new().await;
    let customer = s.invited("888800000007").await;
    let handshake = s.handshake_id("888800000007").await;
    customer.organizations.accept_handshake().handshake_id(&handshake).send().await.unwrap();
    // On linking: at once, a warning (no group yet).
    let (_, events) = s.sweep(Job::PollHandshakes, "888800000007").await;
    assert_eq!(count(&events, "support_plan_attention"), 1);
    assert_eq!(count(&events, "business_support_linked"), 0, "developer support");
    // Each audit warns again while it is wrong.
    let (warned, events) = s.sweep(Job::AuditSupportPlans, "888800000007").await;
    assert_eq!(warned, 1);
    assert_eq!(count(&events, "support_plan_attention"), 2);
    let app = s.app().await;
    let ops = Actor::operator("ops");
    let set = |group: &str| Command::SetSupportPlan {
        account: "888800000007".parse().unwrap(),
        group: group.parse().unwrap(),
    };
    app.handle(&ops, set("business")).unwrap();
    drop(app);
    let (warned, events) = s.sweep(Job::AuditSupportPlans, "888800000007").await;
    assert_eq!(warned, 1, "Business Support does not match Developer support");
    match events.iter().rev().find(|e| e.code() == "support_plan_attention").unwrap() {
        Event::SupportPlanAttention { group, expected, .. } => {
            assert_eq!(*group, Some(orglink::domain::SupportPlanGroup::BusinessSupport));
            assert_eq!(*expected, orglink::domain::SupportPlanGroup::Passthrough);
        }
        other => panic!("{other:?}"),
    }
    s.app().await.handle(&ops, set("passthrough")).unwrap();
    let (warned, _) = s.sweep(Job::AuditSupportPlans, "888800000007").await;
    assert_eq!(warned, 0, "fixed: the warnings stop");
}
