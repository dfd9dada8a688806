//! Zero-paste verification: the probe job looks for the customer's role
//! under the suggested name, against the local AWS emulator, with orglink's
//! clock moved by the test and AssumeRole requests counted on the wire.

use std::time::Duration;

use orglink::app::{App, Command, InstructionsFormat, JobReport, Settings};
use orglink::aws::RetryPolicy;
use orglink::clock::Clock as _;
use orglink::domain::{CheckName, Event, LinkState, Outcome, ProbeOutcome, Problem, SupportTier, Unasked};
use orglink::scheduler::Job;
use time::macros::datetime;
use time::{Duration as Span, OffsetDateTime};

use crate::harness::{Customer, Harness, PLATFORM, emulator, external_id_condition, id, operator};

const START: OffsetDateTime = datetime!(2026-11-26 09:00 UTC);

/// orglink's app with AWS (AssumeRole requests counted on the wire) and its
/// clock at `START`.
fn platform() -> crate::harness::Builder {
    Harness::new().at(START).aws(RetryPolicy { retries: 3, first_delay: Duration::from_millis(20) }).counted()
}

/// The reply's first message as the user reads it.
fn shown(reply: &orglink::app::Reply, lang: orglink::domain::Lang) -> String {
    reply.messages[0].render(&orglink::templates::Templates::embedded(), lang).unwrap().text
}

fn register(h: &Harness, account: &str) -> String {
    h.register(account, SupportTier::Developer)
}

async fn probe_roles(h: &Harness) -> JobReport {
    h.run(Job::ProbeRoles).await
}

/// Moves the clock to the account's next probe and runs the job.
async fn probe_when_due(h: &Harness, account: &str) -> Option<OffsetDateTime> {
    let next = h.account(account).probe.and_then(|p| p.next_at)?;
    h.clock().set(next.max(h.now()));
    probe_roles(h).await;
    Some(next)
}

#[tokio::test]
async fn a_role_created_later_under_the_suggested_name_is_found_and_verified() {
    let h = platform().start().await;
    register(&h, "222200000001");
    let first = h.account("222200000001").probe.unwrap().next_at.unwrap();
    assert!(first >= START && first < START + Span::minutes(2), "spread within the first interval: {first}");

    // Nothing yet: one AssumeRole, nothing recorded but the probe.
    probe_when_due(&h, "222200000001").await;
    let account = h.account("222200000001");
    assert_eq!(account.state, LinkState::Registered);
    assert!(account.role.is_none());
    let probe = account.probe.clone().unwrap();
    assert_eq!(probe.last.unwrap().outcome, ProbeOutcome::NotFound);
    assert_eq!(probe.next_at, Some(h.clock().now() + Span::minutes(2)));
    assert_eq!(h.assume_role_calls(), 1);
    assert_eq!(h.store().audit_log(id("222200000001")).unwrap().len(), 1, "a probe that finds nothing is not audited");
    let status = h.app().handle(&operator(), Command::ShowAccount { account: id("222200000001") }).unwrap();
    let text = shown(&status, orglink::domain::Lang::En);
    assert!(text.contains("orglink looks for the role by itself"), "{text}");
    assert!(text.contains("no role under the suggested name yet"), "{text}");

    // The customer creates the role as the instructions say, 7 minutes in.
    h.clock().advance(Span::minutes(5));
    let (_, arn) = h.role_for("222200000001").await;
    probe_roles(&h).await;
    let account = h.account("222200000001");
    assert_eq!(account.state, LinkState::RoleVerified);
    assert_eq!(account.role.as_ref().unwrap().arn.to_string(), arn);
    assert_eq!(account.role.as_ref().unwrap().verified_at, Some(h.clock().now()));
    assert_eq!(account.probe.as_ref().unwrap().last.as_ref().unwrap().outcome, ProbeOutcome::Verified);
    assert_eq!(account.probe.as_ref().unwrap().next_at, None, "verified: no more probes");
    assert_eq!(h.assume_role_calls(), 3, "with the external ID, without one and with a wrong one");
    assert_eq!(h.notified("222200000001"), ["account_registered", "role_found"]);

    // Verified accounts are not probed again.
    for _ in 0..3 {
        h.clock().advance(Span::minutes(15));
        assert_eq!(probe_roles(&h).await.tracked, 0);
    }
    assert_eq!(h.assume_role_calls(), 0);
    assert_eq!(h.notified("222200000001"), ["account_registered", "role_found"]);
    h.finish().await;
}

#[tokio::test]
async fn a_role_with_problems_is_told_once_and_probing_goes_on_until_fixed() {
    let h = platform().start().await;
    let external_id = register(&h, "222200000002");
    let customer = Customer::new("222200000002").await;
    // Any external ID will do, and ReadOnlyAccess is missing: anyone in the
    // platform's account could use it. The guard fails first, so the role
    // is used for nothing else and the missing policy is not seen yet.
    let any = serde_json::json!({ "StringLike": { "sts:ExternalId": "*" } });
    customer.create_role("OrgLinkReadOnly", PLATFORM, Some(any), &[]).await;
    for _ in 0..6 {
        probe_when_due(&h, "222200000002").await.expect("still probed");
        assert_eq!(h.assume_role_calls(), 3, "with the external ID, without one and with a wrong one");
    }
    let account = h.account("222200000002");
    assert_eq!(account.state, LinkState::Registered);
    let probe = account.probe.as_ref().unwrap();
    assert_eq!(probe.probes, 6);
    assert_eq!(
        probe.last.as_ref().unwrap().outcome,
        ProbeOutcome::Problems { checks: vec![CheckName::ExternalIdRequired] }
    );
    assert!(probe.next_at.is_some(), "probing continues");
    let report = account.role.as_ref().unwrap().report.clone().unwrap();
    assert_eq!(
        report.outcome(CheckName::ExternalIdRequired),
        Some(&Outcome::Failed { problem: Problem::AnyExternalIdAccepted })
    );
    assert_eq!(report.outcome(CheckName::ReadOnlyAccess), Some(&Outcome::Skipped));
    assert_eq!(report.detected_kind, None);
    assert_eq!(h.notified("222200000002"), ["account_registered", "role_needs_fixing"], "told once");
    let notice = h.outbox().into_iter().find(|i| i.event.code() == "role_needs_fixing").unwrap();
    assert_eq!(
        notice.event,
        Event::RoleNeedsFixing { account: id("222200000002"), checks: vec![CheckName::ExternalIdRequired] }
    );

    // The customer sets the condition: now the missing policy shows, a new
    // set of problems, told once.
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{PLATFORM}:root") },
            "Action": "sts:AssumeRole",
            "Condition": external_id_condition(&external_id),
        }],
    });
    customer
        .iam
        .update_assume_role_policy()
        .role_name("OrgLinkReadOnly")
        .policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    for _ in 0..3 {
        probe_when_due(&h, "222200000002").await.expect("still probed");
    }
    assert_eq!(h.notified("222200000002"), ["account_registered", "role_needs_fixing", "role_needs_fixing"]);
    assert_eq!(
        h.account("222200000002").probe.unwrap().last.unwrap().outcome,
        ProbeOutcome::Problems { checks: vec![CheckName::ReadOnlyAccess] }
    );

    // And attaches ReadOnlyAccess: the next probe verifies the role.
    customer
        .iam
        .attach_role_policy()
        .role_name("OrgLinkReadOnly")
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .send()
        .await
        .unwrap();
    probe_when_due(&h, "222200000002").await.expect("still probed");
    assert_eq!(h.account("222200000002").state, LinkState::RoleVerified);
    assert_eq!(h.notified("222200000002").last(), Some(&"role_found"));
    h.finish().await;
}

#[tokio::test]
async fn without_a_role_probing_backs_off_then_stops_and_the_instructions_restart_it() {
    let h = platform().start().await;
    register(&h, "222200000003");
    let mut times = Vec::new();
    while let Some(at) = probe_when_due(&h, "222200000003").await {
        times.push(at);
        assert!(times.len() < 400, "probing must stop");
    }
    let gaps: Vec<Span> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let age = |t: &OffsetDateTime| *t - START;
    for (t, gap) in times.iter().zip(&gaps) {
        let expected = if age(t) < Span::minutes(30) {
            Span::minutes(2)
        } else if age(t) < Span::days(1) {
            Span::minutes(15)
        } else {
            Span::hours(2)
        };
        assert_eq!(*gap, expected, "after the probe at {t}");
    }
    let last = *times.last().unwrap();
    assert!(last < START + Span::days(14) && last > START + Span::days(14) - Span::hours(2), "{last}");
    assert_eq!(h.assume_role_calls() as usize, times.len(), "one AssumeRole per probe of a missing role");
    assert_eq!(h.account("222200000003").probe.unwrap().next_at, None);

    // Stopped: the status says so; nothing more is probed.
    h.clock().advance(Span::days(3));
    assert_eq!(probe_roles(&h).await.tracked, 0);
    let status = h.app().handle(&operator(), Command::ShowAccount { account: id("222200000003") }).unwrap();
    let text = shown(&status, orglink::domain::Lang::Es);
    assert!(text.contains("detenida, no se encontró el rol a tiempo"), "{text}");

    // Showing the instructions again starts over, every 2 minutes.
    let now = h.clock().now();
    let instructions = Command::Instructions { account: id("222200000003"), format: InstructionsFormat::Text };
    let reply = h.app().handle(&operator(), instructions).unwrap();
    let text = shown(&reply, orglink::domain::Lang::En);
    assert!(text.contains("Keep this name and there is nothing to send"), "{text}");
    let probe = h.account("222200000003").probe.unwrap();
    assert_eq!(probe.since, now);
    assert!(probe.next_at.unwrap() < now + Span::minutes(2));
    probe_when_due(&h, "222200000003").await;
    assert_eq!(h.account("222200000003").probe.unwrap().next_at, Some(h.clock().now() + Span::minutes(2)));
    assert_eq!(h.notified("222200000003"), ["account_registered"], "nothing found: nobody is told");
    h.finish().await;
}

#[tokio::test]
async fn a_pasted_arn_takes_precedence_and_a_role_under_another_name_is_found_only_that_way() {
    let h = platform().start().await;
    let external_id = register(&h, "222200000004");
    let customer = Customer::new("222200000004").await;
    let condition = external_id_condition(&external_id);
    // Under another name than the suggested one, the probe does not find it.
    customer.create_role("SomethingElse", PLATFORM, Some(condition.clone()), &["ReadOnlyAccess"]).await;
    probe_when_due(&h, "222200000004").await;
    assert_eq!(h.account("222200000004").state, LinkState::Registered);

    // The customer pastes the ARN of a role they have not created yet: it
    // fails, and is recorded...
    let arn = "arn:aws:iam::222200000004:role/BillingReader";
    let paste = Command::VerifyRole { account: id("222200000004"), arn: Some(arn.parse().unwrap()), description: None };
    h.app().execute(&operator(), paste).await.unwrap();
    assert_eq!(h.account("222200000004").state, LinkState::Registered);
    // ...then creates it: the probe now tries the pasted ARN and finds it.
    customer.create_role("BillingReader", PLATFORM, Some(condition), &["ReadOnlyAccess"]).await;
    h.assume_role_calls();
    probe_when_due(&h, "222200000004").await;
    let account = h.account("222200000004");
    assert_eq!(account.state, LinkState::RoleVerified);
    assert_eq!(account.role.unwrap().arn.to_string(), arn);
    assert_eq!(h.assume_role_calls(), 3);
    assert_eq!(h.notified("222200000004"), ["account_registered", "role_found"]);
    h.finish().await;
}

#[tokio::test]
async fn with_automatic_invitations_the_invitation_follows_the_probe() {
    let h = platform().distributor().settings(|s| s.auto_send_invitations = true).start().await;
    register(&h, "222200000005");
    h.role_for("222200000005").await;
    probe_when_due(&h, "222200000005").await;
    let account = h.account("222200000005");
    assert_eq!(account.state, LinkState::Invited);
    assert!(account.invitation.is_some());
    assert_eq!(h.notified("222200000005"), ["account_registered", "role_found", "invitation_sent"]);
    h.finish().await;
}

#[tokio::test]
async fn the_assume_role_ceiling_holds_with_a_thousand_pending_accounts() {
    let h = platform().start().await;
    let ceiling = Settings::default().probe.assume_role_per_minute;
    let accounts: Vec<String> = (0..1000).map(|n| format!("3333{n:08}")).collect();
    for account in &accounts {
        register(&h, account);
    }
    let mut per_minute = Vec::new();
    let mut probed = std::collections::HashSet::new();
    for _ in 0..30 {
        h.clock().advance(Span::minutes(1));
        let report = probe_roles(&h).await;
        per_minute.push(h.assume_role_calls());
        assert_eq!(report.aws_calls, *per_minute.last().unwrap(), "the report counts what went on the wire");
        for account in &accounts {
            if h.account(account).probe.unwrap().probes > 0 {
                probed.insert(account.clone());
            }
        }
    }
    assert!(per_minute.iter().all(|n| *n <= ceiling), "{per_minute:?}");
    // Steady: with more due than the ceiling allows, every minute uses it
    // (but the last two calls, as a probe may need three).
    assert!(per_minute.iter().all(|n| *n >= ceiling - 2), "{per_minute:?}");
    assert_eq!(probed.len(), 1000, "every account probed within 30 minutes");
    let outbox = h.outbox();
    assert_eq!(outbox.len(), 1000);
    assert!(outbox.iter().all(|i| i.event.code() == "account_registered"), "no role anywhere: nobody is told");
    h.finish().await;
}

#[tokio::test]
async fn when_sts_cannot_be_reached_the_run_stops_and_nothing_is_lost() {
    let h = platform().start().await;
    for n in 1..=5 {
        register(&h, &format!("22220000010{n}"));
    }
    // orglink's AWS side pointed at a port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let keys = emulator().admin(PLATFORM, "orglink-down").await;
    let config = emulator().sdk_config(&keys).into_builder().endpoint_url(format!("http://{closed}")).build();
    let down = App::new(
        h.store().clone(),
        Settings { cross_account_id: PLATFORM.parse().unwrap(), ..Settings::default() },
        h.shared_clock(),
    )
    .with_aws(orglink::aws::Aws::new(config, RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) }));
    h.clock().advance(Span::minutes(2));
    let before: Vec<_> = (1..=5).map(|n| h.account(&format!("22220000010{n}"))).collect();
    let report = down.run_scheduled(Job::ProbeRoles).await.unwrap();
    assert_eq!(report.tracked, 5);
    assert_eq!(report.unchecked.len(), 1, "{report:?}");
    assert_eq!(report.deferred, 4, "the others wait for the next run");
    // orglink's problem: a failed run, and nothing recorded about anyone
    // (the account probed stays due, first for the next run).
    assert!(matches!(report.failed, Some(Unasked::Unavailable { .. })), "{report:?}");
    assert!(!report.succeeded());
    let after: Vec<_> = (1..=5).map(|n| h.account(&format!("22220000010{n}"))).collect();
    assert_eq!(before, after);
    assert!(h.outbox().iter().all(|i| i.event.code() == "account_registered"), "nobody is told");
    // Counted as a failed run: no last success, and stale for `/healthz`
    // once the job's intervals have passed.
    let schedule = orglink::scheduler::Schedule::new(&Default::default()).unwrap();
    let health = down.metrics().job_health(&schedule, h.now(), 3);
    let probe = health.iter().find(|j| j.job == "probe_roles").unwrap();
    assert_eq!(probe.last_success, None);
    let later = down.metrics().job_health(&schedule, h.now() + Span::hours(1), 3);
    assert!(later.iter().find(|j| j.job == "probe_roles").unwrap().stale);

    // AWS is back: the next run probes them all.
    h.clock().advance(Span::minutes(2));
    let report = probe_roles(&h).await;
    assert_eq!((report.tracked, report.unchecked.len(), report.deferred), (5, 0, 0), "{report:?}");
    assert_eq!(h.assume_role_calls(), 5);
    assert!(h.outbox().iter().all(|i| i.event.code() == "account_registered"), "none found: nobody is told");
    h.finish().await;
}
