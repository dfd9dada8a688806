//! The scheduled jobs, as app code: what `orglink sweep` and the scheduler
//! run.

use std::collections::HashMap;

use serde::Serialize;

use super::{Actor, App, AppError, Command, Rights, Scope};
use crate::aws::VerifyRequest;
use crate::domain::{Account, CheckName, Event, HandshakeState, LinkState, Outcome, Problem};
use crate::scheduler::Job;

/// What one run of a job did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct JobReport {
    pub job: &'static str,
    /// Accounts the job looked at.
    pub tracked: usize,
    /// Accounts whose record changed.
    pub changed: usize,
    /// Calls made to AWS.
    pub aws_calls: u32,
    /// Accounts that could not be checked this time, with why.
    pub unchecked: Vec<(String, String)>,
    /// Accounts left for a later run (the AssumeRole ceiling was reached).
    pub deferred: usize,
}

impl App {
    /// The actor scheduled work runs as.
    fn system(job: Job) -> Actor {
        Actor {
            id: format!("job:{}", job.name()),
            scope: Scope::Ops,
            rights: Rights { manage_server: true, roles: Vec::new(), ops: true },
        }
    }

    pub async fn run_job(&self, job: Job) -> Result<JobReport, AppError> {
        let mut report = match job {
            Job::PollHandshakes => self.poll_handshakes().await?,
            Job::RemindInvitations => self.remind_invitations()?,
            Job::SendQueuedInvitations => self.send_queued_invitations().await?,
            Job::AuditSupportPlans => self.audit_support_plans()?,
            Job::OpenTickets => self.open_tickets().await?,
            Job::ProbeRoles => self.probe_roles().await?,
        };
        report.job = job.name();
        Ok(report)
    }

    fn open_invitations(&self) -> Result<Vec<Account>, AppError> {
        Ok(self
            .store
            .all_accounts()?
            .into_iter()
            .filter(|a| a.invitation.as_ref().is_some_and(|i| i.state.is_open()))
            .collect())
    }

    /// One `ListHandshakesForOrganization` (every page) for all tracked
    /// invitations; `DescribeHandshake` only for those the list lacks. Each
    /// change lands with its events in one transaction; an error for one
    /// invitation leaves it as it was (never marked expired) and the sweep
    /// goes on.
    async fn poll_handshakes(&self) -> Result<JobReport, AppError> {
        let tracked = self.open_invitations()?;
        let mut report = JobReport { tracked: tracked.len(), ..JobReport::default() };
        if tracked.is_empty() {
            return Ok(report);
        }
        let Some(distributor) = &self.distributor else {
            return Err(anyhow::anyhow!("polling invitations needs AWS Organizations").into());
        };
        let listed: HashMap<String, HandshakeState> = match distributor.invitations().await {
            Ok((handshakes, pages)) => {
                report.aws_calls += pages;
                handshakes.into_iter().map(|h| (h.id.to_string(), h.state)).collect()
            }
            Err(e) => {
                report.aws_calls += 1;
                tracing::warn!(error = %e, "listing the organization's invitations failed; describing each");
                HashMap::new()
            }
        };
        let actor = Self::system(Job::PollHandshakes);
        let now = self.clock.now();
        for account in tracked {
            let invitation = account.invitation.as_ref().expect("tracked accounts have one");
            let state = match listed.get(invitation.handshake_id.as_str()) {
                Some(state) => *state,
                None => {
                    report.aws_calls += 1;
                    match distributor.handshake(&invitation.handshake_id).await {
                        Ok(h) => h.state,
                        Err(e) => {
                            report.unchecked.push((account.id.to_string(), e));
                            continue;
                        }
                    }
                }
            };
            // Still open on AWS's side after its own expiry: expired.
            let state = if state.is_open() && now > invitation.expires_at { HandshakeState::Expired } else { state };
            if state == invitation.state {
                continue;
            }
            self.store
                .update_account(account.id, &actor.id, "handshake_observed", now, |a| a.handshake_observed(state, now))
                .map_err(|e| anyhow::anyhow!("recording handshake state of {}: {e:?}", account.id))?;
            report.changed += 1;
        }
        Ok(report)
    }

    /// Looks for the role of every account not verified yet, under the
    /// suggested name (or the ARN pasted), most overdue first, as long as
    /// the AssumeRole ceiling allows; the rest wait for the next run.
    async fn probe_roles(&self) -> Result<JobReport, AppError> {
        let probe = &self.settings.probe;
        if !probe.enabled {
            return Ok(JobReport::default());
        }
        let now = self.clock.now();
        let mut due: Vec<(time::OffsetDateTime, Account)> = self
            .store
            .all_accounts()?
            .into_iter()
            .filter_map(|a| Some((a.probe_due(&probe.plan)?, a)))
            .filter(|(at, _)| *at <= now)
            .collect();
        due.sort_by_key(|(at, a)| (*at, a.id));
        let mut report = JobReport { tracked: due.len(), ..JobReport::default() };
        if due.is_empty() {
            return Ok(report);
        }
        let Some(aws) = &self.aws else {
            return Err(anyhow::anyhow!("looking for roles needs AWS").into());
        };
        let actor = Self::system(Job::ProbeRoles);
        let total = due.len();
        for (done, (_, account)) in due.into_iter().enumerate() {
            let now = self.clock.now();
            // A probe makes at most two AssumeRole calls.
            if self.probe_calls.lock().unwrap_or_else(|e| e.into_inner()).available(now) < 2 {
                report.deferred = total - done;
                break;
            }
            let arn = account.probe_target(self.settings.partition, &self.settings.role_name);
            let request = VerifyRequest {
                account: account.id,
                arn: arn.clone(),
                external_id: account.external_id.clone(),
                tier: account.support_tier,
            };
            let checked = aws.probe(&request).await;
            let calls = checked.assume_role_calls();
            self.probe_calls.lock().unwrap_or_else(|e| e.into_inner()).record(now, calls);
            report.aws_calls += calls;
            let (updated, events) = self
                .store
                .update_account_quietly(account.id, &actor.id, "probe", now, |a| {
                    // Changed while AWS was asked (a pasted ARN, a rotated
                    // external ID): this probe's answer no longer applies.
                    let target = a.probe_target(self.settings.partition, &self.settings.role_name);
                    if a.state != LinkState::Registered || a.external_id != request.external_id || target != arn {
                        return Ok(vec![]);
                    }
                    a.probe_observed(&probe.plan, arn.clone(), checked.clone(), now)
                })
                .map_err(|e| anyhow::anyhow!("recording the probe of {}: {e:?}", account.id))?;
            if !events.is_empty() {
                report.changed += 1;
            }
            if let Some(Outcome::Failed { problem: Problem::Unavailable { detail } }) =
                checked.outcome(CheckName::AssumeRole)
            {
                // STS itself cannot be reached: the others wait for the
                // next run rather than each wait out the SDK's timeouts.
                report.unchecked.push((account.id.to_string(), detail.clone()));
                report.deferred = total - done - 1;
                break;
            }
            if events.iter().any(|e| matches!(e, Event::RoleFound { .. }))
                && self.settings.auto_send_invitations
                && updated.state == LinkState::RoleVerified
            {
                for message in self.auto_invite(updated.id).await {
                    if let super::Message::Error(e) = message {
                        report.unchecked.push((updated.id.to_string(), format!("invitation: {e}")));
                    }
                }
            }
        }
        Ok(report)
    }

    /// Reminds the tenant once per threshold before an invitation expires.
    fn remind_invitations(&self) -> Result<JobReport, AppError> {
        let tracked = self.open_invitations()?;
        let mut report = JobReport { tracked: tracked.len(), ..JobReport::default() };
        let thresholds = self.settings.reminder_days.clone();
        let now = self.clock.now();
        let actor = Self::system(Job::RemindInvitations);
        for account in tracked {
            let invitation = account.invitation.as_ref().expect("tracked accounts have one");
            let Some(threshold) = invitation.reminder_due(now, &thresholds) else { continue };
            self.store
                .update_account(account.id, &actor.id, "invitation_reminder", now, |a| {
                    let invitation = a.invitation.as_mut().expect("still invited");
                    invitation.mark_reminded(threshold, &thresholds);
                    Ok::<_, ()>(vec![Event::InvitationReminder {
                        account: a.id,
                        expires_at: invitation.expires_at,
                        days_left: (invitation.expires_at - now).whole_days().max(0),
                    }])
                })
                .map_err(|e| anyhow::anyhow!("recording a reminder for {}: {e:?}", account.id))?;
            report.changed += 1;
        }
        Ok(report)
    }

    /// Opens every ticket waiting to be opened; those Freshdesk does not
    /// take stay, and operations hear of each once.
    async fn open_tickets(&self) -> Result<JobReport, AppError> {
        let now = self.clock.now();
        let requests: Vec<_> = self.store.ticket_requests()?.into_iter().filter(|r| r.due(now)).collect();
        let mut report = JobReport { tracked: requests.len(), ..JobReport::default() };
        for request in requests {
            match self.open_ticket(&request, "job:open_tickets").await? {
                Some(_) => report.changed += 1,
                None => report.unchecked.push((request.account.to_string(), request.key.clone())),
            }
        }
        Ok(report)
    }

    /// Opens (or adopts) one requested ticket; `None` while Freshdesk cannot
    /// take it.
    pub(super) async fn open_ticket(
        &self,
        request: &crate::domain::TicketRequest,
        actor: &str,
    ) -> Result<Option<crate::domain::TicketRecord>, AppError> {
        let now = self.clock.now();
        let Some(desk) = &self.ticket_desk else {
            self.store.ticket_waiting(request, None, "not_configured", actor, now)?;
            return Ok(None);
        };
        let Some(account) = self.store.account(request.account)? else { return Ok(None) };
        match desk.open(request, &account, now).await {
            Ok(record) if matches!(request.kind, crate::domain::TicketKind::InvitationResent { .. }) => {
                // A note on an existing ticket: nothing new to record or announce.
                self.store.ticket_request_done(&request.key)?;
                Ok(Some(record))
            }
            Ok(record) => {
                self.store.ticket_opened(request, record.clone(), actor, now)?;
                Ok(Some(record))
            }
            Err(e) => {
                tracing::warn!(key = request.key, error = %e, "Freshdesk did not take the ticket; it waits");
                let retry_after = match &e {
                    crate::freshdesk::FreshdeskError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                };
                self.store.ticket_waiting(
                    request,
                    retry_after,
                    crate::freshdesk::desk::problem_code(&e),
                    actor,
                    now,
                )?;
                Ok(None)
            }
        }
    }

    /// Every linked account whose support plan group is missing or does not
    /// match its tier gets a warning to its tenant, each run, until fixed.
    fn audit_support_plans(&self) -> Result<JobReport, AppError> {
        let linked: Vec<Account> =
            self.store.all_accounts()?.into_iter().filter(|a| a.state == crate::domain::LinkState::Linked).collect();
        let mut report = JobReport { tracked: linked.len(), ..JobReport::default() };
        let actor = Self::system(Job::AuditSupportPlans);
        let now = self.clock.now();
        for account in linked.iter().filter(|a| a.support_plan_attention().is_some()) {
            self.store
                .update_account(account.id, &actor.id, "support_plan_audit", now, |a| {
                    Ok::<_, ()>(a.support_plan_attention().into_iter().collect())
                })
                .map_err(|e| anyhow::anyhow!("recording the audit of {}: {e:?}", account.id))?;
            report.changed += 1;
        }
        Ok(report)
    }

    /// Sends the invitations AWS's daily quota held back; those it still
    /// holds back stay queued.
    async fn send_queued_invitations(&self) -> Result<JobReport, AppError> {
        let queued: Vec<Account> =
            self.store.all_accounts()?.into_iter().filter(|a| a.queued_invitation.is_some()).collect();
        let mut report = JobReport { tracked: queued.len(), ..JobReport::default() };
        for account in queued {
            let note = account.queued_invitation.as_ref().and_then(|q| q.note.clone());
            let actor = Self::system(Job::SendQueuedInvitations);
            report.aws_calls += 1;
            match self.execute(&actor, Command::Invite { account: account.id, note }).await {
                Ok(reply) => {
                    let sent = self.store.account(account.id)?.is_some_and(|a| a.queued_invitation.is_none());
                    if sent {
                        report.changed += 1;
                    } else {
                        report.unchecked.push((account.id.to_string(), format!("{:?}", reply.tone)));
                    }
                }
                Err(e) => report.unchecked.push((account.id.to_string(), e.to_string())),
            }
        }
        Ok(report)
    }
}
