//! orglink's one integration test binary: one module per area, and one
//! harness (`harness/`) that starts what a test needs (a store, orglink's
//! clock, the local AWS emulator, recorders standing in for Discord and
//! Freshdesk, the running server) and checks, when the test finishes, that
//! no background task crashed and nothing unexpected is left in the outbox.

mod harness;

/// What AWS does and the emulator does not, scripted with aws-smithy-mocks.
mod aws_mocks;
/// Online backup, restore and the store's check; scheduled backups.
mod backup;
/// Claims: several resellers, one account, the role decides.
mod claims;
/// The command line, the real binary against a store on disk.
mod cli;
/// Operations correct registrations; everything is in the history.
mod corrections;
/// Crash safety: `orglink serve` killed at random moments.
mod crash;
/// The Discord front end end to end, over the HTTP interactions endpoint.
mod discord;
/// Role verification from Discord, against the AWS emulator.
mod discord_verify;
/// Failures named by their class: ours, AWS's, the user's.
mod failures;
/// Free text is data: refused where nothing can carry it, quoted or
/// escaped wherever it lands (YAML, shell, Discord).
mod free_text;
/// The Freshdesk client.
mod freshdesk;
/// Every parser of untrusted input, fuzzed.
mod fuzz;
/// The Discord gateway transport, against a local fake gateway.
mod gateway;
/// `account import`: a CSV file registered whole or not at all.
mod import;
/// AWS Organizations invitations: sending and tracking them.
mod invitations;
/// `/link-accounts`: a CSV file attached in Discord, imported whole or not
/// at all.
mod link_accounts;
/// Outbox delivery to Discord channels: once, retried, never dropped.
mod notifications;
/// Operations see, send again and drop the outbox's notifications.
mod outbox;
/// The systemd unit and the Dockerfile keep their hardening.
mod packaging;
/// The pipeline for operations: the command, `/pipeline`, operations'
/// `/status`.
mod pipeline;
/// Zero-paste verification: the probe job.
mod probe;
/// The CloudFormation quick-create link: published, followed, verified.
mod quick_create;
/// Quotas per tenant, and the probe's fair share across tenants.
mod quotas;
/// No secret in logs, replies or the store.
mod secrets;
/// The command line through a running `orglink serve`'s socket.
mod socket;
/// Every message in both languages: snapshots, generated role templates.
mod templates;
/// Tenants approved by the distributor: the door, the decisions, suspension.
mod tenants;
/// The Freshdesk tickets orglink opens.
mod tickets;
/// Role verification against the AWS emulator.
mod verify;
