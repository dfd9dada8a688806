//! orglink's one integration test binary: one module per area, and one
//! harness (`harness/`) that starts what a test needs.

mod harness;

mod aws_mocks;
mod cli;
mod crash;
mod discord;
mod discord_verify;
mod freshdesk;
mod fuzz;
mod handshakes;
mod invite;
mod notifications;
mod probe;
mod secrets;
mod store;
mod templates;
mod tickets;
mod verify;
