//! The probe's fair share: one tenant's thousands of due claims do not
//! hold up another tenant's few.

use std::collections::BTreeMap;
use std::time::Duration;

use orglink::app::Command;
use orglink::aws::RetryPolicy;
use orglink::domain::{DueJob, SupportTier};
use orglink::scheduler::Job;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::harness::{Harness, new_account, operator};

const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

/// Probes made so far, per tenant.
fn probes_per_tenant(h: &Harness) -> BTreeMap<String, u32> {
    let mut probes = BTreeMap::new();
    for claim in h.store().all_accounts().unwrap() {
        *probes.entry(claim.tenant.to_string()).or_default() += claim.probe.as_ref().map_or(0, |p| p.probes);
    }
    probes
}

#[tokio::test]
async fn each_probe_run_shares_the_assume_role_ceiling_round_robin_across_tenants() {
    // A probe is planned as three AssumeRole calls (the role may exist):
    // a ceiling of 30 reads at most 10 claims at a time, 28 probes a run.
    let h = Harness::new()
        .at(AT)
        .aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) })
        .counted()
        .settings(|s| s.probe.assume_role_per_minute = 30)
        .start()
        .await;
    // The big tenant registered its thousand first: all more overdue than
    // the small tenant's five.
    for n in 0..1000 {
        let new = new_account(&format!("6666{n:08}"), "big", SupportTier::Basic);
        h.app().handle(&operator(), Command::AddAccount(new)).unwrap();
    }
    h.clock().advance(time::Duration::minutes(10));
    for n in 0..5 {
        let new = new_account(&format!("7777{n:08}"), "small", SupportTier::Basic);
        h.app().handle(&operator(), Command::AddAccount(new)).unwrap();
    }
    h.clock().advance(time::Duration::minutes(2));
    // What most-overdue-first would have read for the first run's 28.
    let overdue_first = h.store().due_accounts(DueJob::Probe, h.now(), 28).unwrap();
    let small_first = overdue_first.accounts.iter().filter(|a| a.tenant.as_str() == "small").count();
    assert_eq!((overdue_first.total, small_first), (1005, 0));

    let mut runs = Vec::new();
    let mut before = BTreeMap::new();
    for run in 1..=3 {
        let read = h.app().metrics().job_records_read_total(Job::ProbeRoles.name());
        let report = h.run(Job::ProbeRoles).await;
        let read = h.app().metrics().job_records_read_total(Job::ProbeRoles.name()) - read;
        assert_eq!(read, 28, "run {run}: no more records read than the ceiling lets it probe");
        let calls = h.assume_role_calls();
        assert!(calls <= 30, "run {run}: {calls} AssumeRole calls");
        assert_eq!(report.aws_calls, calls);
        let after = probes_per_tenant(&h);
        let new = |tenant: &str| after.get(tenant).unwrap_or(&0) - before.get(tenant).unwrap_or(&0);
        runs.push((new("big"), new("small"), report.deferred));
        println!(
            "fair share, run {run}: probed big {}, small {} (of 5); {} AssumeRole calls; {} left for later \
             (most overdue first would have probed {small_first} of small's in run 1)",
            new("big"),
            new("small"),
            calls,
            report.deferred
        );
        before = after;
        h.clock().advance(time::Duration::minutes(1));
    }
    assert_eq!(runs[0], (23, 5, 1005 - 28), "the small tenant's five all in the first run");
    assert_eq!((runs[1].0, runs[1].1), (28, 0), "then the big tenant has the run to itself");
    assert_eq!((runs[2].0, runs[2].1), (23, 5), "the five are due again two minutes on: their turns come first");
    let outbox = h.outbox();
    assert!(outbox.iter().all(|i| i.event.code() == "account_registered"), "no role anywhere: nobody is told");
    h.finish().await;
}
