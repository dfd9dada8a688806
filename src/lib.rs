//! orglink: links customers' existing AWS accounts into a distributor's AWS
//! Organization, from chat and the command line.
//!
//! See ARCHITECTURE.md for the modules and how data flows between them.

pub mod app;
pub mod aws;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod discord;
pub mod domain;
pub mod freshdesk;
pub mod health;
pub mod metrics;
pub mod scheduler;
pub mod server;
pub mod socket;
pub mod store;
pub mod templates;
pub mod wiring;
