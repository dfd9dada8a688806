//! The store's check: whether what it holds agrees with itself. Every
//! index entry (`accounts_by_tenant`, `external_ids`, `due`) must be one a
//! stored claim has, and every claim must have its entries; an external ID
//! belongs to one claim; every outbox item and ticket request about an
//! account must find it; the outbox index must hold each item once and
//! each tenant's count must be how many of its items wait; the pipeline's
//! rows must be what the claims say;
//! the schema version must be one this orglink knows.
//! It reads and judges nothing but the store's own bookkeeping; what is
//! found is typed, and the front end says it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::accounts::{Stored, claim_key, due_key, parse_claim_key, tenant_key};
use super::{OutboxItem, SCHEMA_KEY, SCHEMA_VERSION, Store, StoreError, codec, show_key};
use crate::domain::{DueJob, TicketRequest};

/// One of the indexes kept beside the accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Index {
    /// `accounts_by_tenant`.
    ByTenant,
    /// `external_ids`.
    ExternalIds,
    /// `due`, what the jobs read.
    Due,
}

/// One inconsistency. Claims are named by account and tenant, never by
/// their external ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// No schema version, or one this orglink does not know.
    SchemaVersion { found: Option<u32>, readable: u32 },
    /// A stored record that does not decode.
    Unreadable { tree: &'static str, key: String },
    /// A claim stored under another account's key.
    Misplaced { key: String, account: String, tenant: String },
    /// One tenant holding two claims on one account.
    DuplicateClaim { account: String, tenant: String },
    /// An index entry no stored claim has (the claim named when the entry
    /// names one; `job` for the due index).
    StrayEntry { index: Index, account: Option<String>, tenant: Option<String>, job: Option<String> },
    /// An entry a stored claim has and the index lacks.
    MissingEntry { index: Index, account: String, tenant: String, job: Option<String> },
    /// Two claims with the same external ID.
    SharedExternalId { account: String, tenant: String, other_account: String, other_tenant: String },
    /// An outbox item about an account that has no claim left.
    OrphanNotice { id: u64, account: String },
    /// A ticket request about an account that has no claim left.
    OrphanTicketRequest { account: String, tenant: String },
    /// An outbox item the outbox index lacks (`missing`), or an index
    /// entry no item has (or with another tenant or time than its item's).
    OutboxIndex { id: u64, missing: bool },
    /// A tenant's count of waiting outbox items that is not how many wait.
    OutboxCount { tenant: String, counted: u64, waiting: u64 },
    /// The pipeline's rows of a tenant's claims differ from the claims
    /// (`count` accounts, the first [`NAMED`] of them named).
    PipelineRows { tenant: String, count: usize, accounts: Vec<String> },
}

/// Accounts named in one finding at most.
pub const NAMED: usize = 10;

/// What the check read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub schema_version: Option<u32>,
    pub accounts: usize,
    pub claims: usize,
    pub index_entries: usize,
    pub outbox_items: usize,
    pub ticket_requests: usize,
}

/// The check's outcome: what it read and what it found (nothing, when the
/// store agrees with itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checked: Checked,
    pub findings: Vec<Finding>,
}

/// The due job a tag names, by its code.
fn job_of(tag: u8) -> String {
    let name = |job| match job {
        DueJob::Probe => "probe",
        DueJob::Remind => "remind",
        DueJob::Poll => "poll",
        DueJob::Audit => "audit",
        DueJob::SendQueued => "send_queued",
        DueJob::Lapse => "lapse",
    };
    DueJob::from_tag(tag).map_or_else(|| format!("#{tag}"), |job| name(job).to_owned())
}

/// (account, tenant) of a `due` key: tag, time, account, tenant.
fn parse_due_key(key: &[u8]) -> Option<(u8, String, String)> {
    let (account, tenant) = parse_claim_key(key.get(9..)?)?;
    Some((key[0], account.to_string(), tenant.to_string()))
}

/// (account, tenant) of an `accounts_by_tenant` key: tenant, NUL, account.
fn parse_tenant_key(key: &[u8]) -> Option<(String, String)> {
    let nul = key.iter().position(|&b| b == 0)?;
    let mut claim = key.get(nul + 1..)?.to_vec();
    claim.extend_from_slice(&key[..nul]);
    parse_claim_key(&claim).map(|(account, tenant)| (account.to_string(), tenant.to_string()))
}

impl Store {
    /// Checks the store against itself, while no write runs (writes wait
    /// the while).
    pub fn check(&self) -> Result<Report, StoreError> {
        let _quiet = self.quiet();
        let mut report = Report::default();
        let found = self.db.get(SCHEMA_KEY)?.map(|v| v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0));
        report.checked.schema_version = found;
        if found.is_none_or(|v| v != SCHEMA_VERSION) {
            report.findings.push(Finding::SchemaVersion { found, readable: SCHEMA_VERSION });
        }
        // What the claims say the indexes hold.
        let mut by_tenant = BTreeSet::new();
        let mut due = BTreeSet::new();
        let mut external_ids: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut accounts = BTreeSet::new();
        let mut rows = super::pipeline::Buckets::new();
        for entry in self.accounts.iter() {
            let (key, value) = entry?;
            report.checked.accounts += 1;
            let Ok(stored) = codec::decode::<Stored>(&value) else {
                report.findings.push(Finding::Unreadable { tree: "accounts", key: show_key(&key) });
                continue;
            };
            accounts.insert(key.to_vec());
            let mut tenants = BTreeSet::new();
            for claim in &stored.claims {
                let account = &claim.account;
                report.checked.claims += 1;
                let (id, tenant) = (account.id.to_string(), account.tenant.to_string());
                if account.id.as_bytes() != &key[..] {
                    report.findings.push(Finding::Misplaced {
                        key: show_key(&key),
                        account: id.clone(),
                        tenant: tenant.clone(),
                    });
                }
                if !tenants.insert(account.tenant.clone()) {
                    report.findings.push(Finding::DuplicateClaim { account: id.clone(), tenant: tenant.clone() });
                }
                super::pipeline::add_claim(&mut rows, account);
                by_tenant.insert(tenant_key(&account.tenant, account.id));
                for (tag, at) in &claim.due {
                    due.insert(due_key(*tag, *at, account.id, &account.tenant));
                }
                let holder = claim_key(account.id, &account.tenant);
                if let Some(other) = external_ids.insert(account.external_id.as_str().as_bytes().to_vec(), holder)
                    && let Some((other_account, other_tenant)) = parse_claim_key(&other)
                {
                    report.findings.push(Finding::SharedExternalId {
                        account: id,
                        tenant,
                        other_account: other_account.to_string(),
                        other_tenant: other_tenant.to_string(),
                    });
                }
            }
        }
        // What the indexes hold.
        let stray = |index, key: &[u8], job: Option<u8>| {
            let claim = match index {
                Index::ByTenant => parse_tenant_key(key),
                Index::Due => parse_due_key(key).map(|(_, a, t)| (a, t)),
                Index::ExternalIds => None,
            };
            let (account, tenant) = claim.unzip();
            Finding::StrayEntry { index, account, tenant, job: job.map(job_of) }
        };
        for (index, tree, expected) in
            [(Index::ByTenant, &self.by_tenant, &mut by_tenant), (Index::Due, &self.due, &mut due)]
        {
            for key in tree.iter().keys() {
                let key = key?;
                report.checked.index_entries += 1;
                if !expected.remove(&key[..]) {
                    let job = (index == Index::Due).then(|| key.first().copied()).flatten();
                    report.findings.push(stray(index, &key, job));
                }
            }
            for key in std::mem::take(expected) {
                let (account, tenant, job) = match index {
                    Index::ByTenant => parse_tenant_key(&key).map(|(a, t)| (a, t, None)),
                    _ => parse_due_key(&key).map(|(tag, a, t)| (a, t, Some(job_of(tag)))),
                }
                .unwrap_or_default();
                report.findings.push(Finding::MissingEntry { index, account, tenant, job });
            }
        }
        for entry in self.external_ids.iter() {
            let (key, value) = entry?;
            report.checked.index_entries += 1;
            if external_ids.get(&key[..]).is_some_and(|holder| holder[..] == value[..]) {
                external_ids.remove(&key[..]);
                continue;
            }
            let (account, tenant) = parse_claim_key(&value).map(|(a, t)| (a.to_string(), t.to_string())).unzip();
            report.findings.push(Finding::StrayEntry { index: Index::ExternalIds, account, tenant, job: None });
        }
        for holder in external_ids.into_values() {
            if let Some((account, tenant)) = parse_claim_key(&holder) {
                report.findings.push(Finding::MissingEntry {
                    index: Index::ExternalIds,
                    account: account.to_string(),
                    tenant: tenant.to_string(),
                    job: None,
                });
            }
        }
        for mismatch in self.pipeline_row_mismatches(rows)? {
            report.findings.push(Finding::PipelineRows {
                tenant: mismatch.tenant,
                count: mismatch.accounts.len(),
                accounts: mismatch.accounts.iter().take(NAMED).map(ToString::to_string).collect(),
            });
        }
        // What refers to accounts.
        let mut outbox_index = BTreeMap::new();
        let mut outbox_counts: BTreeMap<String, u64> = BTreeMap::new();
        for entry in self.outbox.iter() {
            let (key, value) = entry?;
            report.checked.outbox_items += 1;
            let Ok(item) = codec::decode::<OutboxItem>(&value) else {
                report.findings.push(Finding::Unreadable { tree: "outbox", key: show_key(&key) });
                continue;
            };
            outbox_index.insert(super::outbox::index_key(&item).to_vec(), item.tenant.as_str().as_bytes().to_vec());
            *outbox_counts.entry(item.tenant.to_string()).or_default() += 1;
            // A tenant's own event names no account; one that stands alone
            // shows only its own fields (its tenant may hold no claim).
            if let Some(account) = item.event.account().filter(|_| !item.event.stands_alone())
                && !accounts.contains(account.as_bytes().as_slice())
            {
                report.findings.push(Finding::OrphanNotice { id: item.id, account: account.to_string() });
            }
        }
        for entry in self.outbox_index.iter() {
            let (key, value) = entry?;
            report.checked.index_entries += 1;
            if outbox_index.get(&key[..]).is_some_and(|tenant| tenant[..] == value[..]) {
                outbox_index.remove(&key[..]);
            } else if let Some(id) = super::outbox::id_of(&key) {
                report.findings.push(Finding::OutboxIndex { id, missing: false });
            }
        }
        for key in outbox_index.keys() {
            if let Some(id) = super::outbox::id_of(key) {
                report.findings.push(Finding::OutboxIndex { id, missing: true });
            }
        }
        for entry in self.outbox_counts.iter() {
            let (key, value) = entry?;
            let tenant = show_key(&key);
            let counted = super::outbox::count_of(&value);
            let waiting = outbox_counts.remove(&tenant).unwrap_or(0);
            if counted != waiting {
                report.findings.push(Finding::OutboxCount { tenant, counted, waiting });
            }
        }
        for (tenant, waiting) in outbox_counts {
            report.findings.push(Finding::OutboxCount { tenant, counted: 0, waiting });
        }
        for entry in self.ticket_requests.iter() {
            let (key, value) = entry?;
            report.checked.ticket_requests += 1;
            let Ok(request) = codec::decode::<TicketRequest>(&value) else {
                report.findings.push(Finding::Unreadable { tree: "ticket_requests", key: show_key(&key) });
                continue;
            };
            if !accounts.contains(request.account.as_bytes().as_slice()) {
                report.findings.push(Finding::OrphanTicketRequest {
                    account: request.account.to_string(),
                    tenant: request.tenant.to_string(),
                });
            }
        }
        Ok(report)
    }
}
