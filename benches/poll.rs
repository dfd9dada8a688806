//! The poll job with 10,000 tracked invitations, against the local AWS
//! emulator: AWS calls per sweep (one per page of handshakes, not one per
//! account), sweep time, peak RSS.
//!
//! `cargo bench --bench poll` (`ORGLINK_BENCH_HANDSHAKES=N` for another
//! count; needs fakecloud, as the tests do).

#[path = "../tests/it/harness/aws.rs"]
#[allow(dead_code)] // each bench uses part of it
mod aws_harness;
#[path = "support/figures.rs"]
mod figures;

use std::sync::Arc;
use std::time::Instant;

use aws_harness::*;
use aws_sdk_organizations::types::{HandshakeParty, HandshakePartyType};
use orglink::app::{Actor, App, Command, Settings};
use orglink::aws::organizations::{Distributor, handshake_info};
use orglink::clock::SystemClock;
use orglink::domain::{AccountKind, Invitation, NewAccount, RoleRecord, SupportTier, Transition};
use orglink::scheduler::Job;
use orglink::store::{By, Store};

#[tokio::main]
async fn main() {
    let count: u64 = std::env::var("ORGLINK_BENCH_HANDSHAKES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let e = emulator();
    let keys = e.admin(PLATFORM, "orglink-poll").await;
    let config = e.sdk_config(&keys);
    let organizations = aws_sdk_organizations::Client::new(&config);
    organizations.create_organization().send().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let app =
        App::new(store.clone(), Settings::default(), Arc::new(SystemClock)).with_distributor(Distributor::new(&config));
    let ops = Actor::operator("bench");
    let started = Instant::now();
    for i in 0..count {
        let id = format!("{:012}", 900_000_000_000 + i);
        let target = HandshakeParty::builder().id(&id).r#type(HandshakePartyType::Account).build().unwrap();
        let sent = organizations.invite_account_to_organization().target(target).send().await.expect("invited");
        let handshake = handshake_info(sent.handshake().unwrap()).unwrap();
        let new_tenant: orglink::domain::TenantId = format!("tenant-{}", i % 100).parse().unwrap();
        let new = NewAccount {
            id: id.parse().unwrap(),
            tenant: format!("tenant-{}", i % 100).parse().unwrap(),
            customer: "Bench".parse().unwrap(),
            root_email: None,
            support_tier: SupportTier::Basic,
            kind: AccountKind::Standalone,
            price_book: None,
        };
        app.handle(&ops, Command::AddAccount(new)).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let tenant = new_tenant.clone();
        app.update_account(id.parse().unwrap(), &tenant, By::new("bench", "setup", now), &[], |a| {
            a.role = Some(RoleRecord {
                arn: format!("arn:aws:iam::{id}:role/R").parse().unwrap(),
                description: None,
                recorded_at: now,
                verified_at: Some(now),
                report: None,
            });
            let mut events = a.apply(&Transition::RoleVerified, now)?;
            events.extend(a.invitation_sent(
                Invitation {
                    handshake_id: handshake.id.clone(),
                    state: handshake.state,
                    requested_at: handshake.requested_at,
                    expires_at: handshake.expires_at,
                    note: None,
                    reminded: vec![],
                },
                now,
            )?);
            Ok::<_, orglink::domain::IllegalTransition>(events)
        })
        .unwrap();
    }
    let setup = started.elapsed();

    let mut sweeps = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let report = app.run_job(Job::PollHandshakes).await.unwrap();
        sweeps.push((started.elapsed(), report));
    }
    println!("poll benchmark: {count} tracked open invitations in fakecloud (set up in {:.1} s)", setup.as_secs_f64());
    println!("| sweep | tracked | AWS calls | changed | time |");
    println!("|---|---|---|---|---|");
    for (i, (elapsed, report)) in sweeps.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} | {:.2} s |",
            i + 1,
            report.tracked,
            report.aws_calls,
            report.changed,
            elapsed.as_secs_f64()
        );
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: unknown");
    println!("peak RSS of the orglink process (fakecloud not included): {}", peak.trim_start_matches("VmHWM:").trim());
    // For scripts/bench.sh's table.
    if let Some((elapsed, report)) = sweeps.last() {
        println!(
            "summary | poll job at {count} handshakes: AWS calls, time | {}, {:.1} s |",
            report.aws_calls,
            elapsed.as_secs_f64()
        );
        let mut figures = figures::Figures::new("poll");
        figures.set("handshakes", count as f64);
        figures.set("poll_aws_calls_per_run", report.aws_calls as f64);
        figures.seconds("poll_run_seconds", *elapsed);
        figures.set("peak_rss_bytes", figures::peak_rss_bytes().unwrap_or_default() as f64);
        figures.write();
    }
}
