//! The scheduled jobs, as app code: what `orglink sweep` and the scheduler
//! run. Each reads only the accounts the due index says are due.

use std::collections::HashMap;

use serde::Serialize;

use super::{Actor, App, AppError, Command, Message};
use crate::aws::VerifyRequest;
use crate::domain::{Account, Event, FairShare, HandshakeState, LinkState, Unasked};
use crate::scheduler::Job;
use crate::store::{Audit, By};

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
    /// Accounts left alone: their tenant is suspended.
    pub held: usize,
    /// The run stopped because AWS could not be asked (orglink's problem):
    /// a failed run, whatever it did before.
    pub failed: Option<Unasked>,
}

impl JobReport {
    /// The run did what it is for: a run that could not ask AWS is not
    /// (it counts as failed in metrics and health, and `sweep` exits 1).
    pub fn succeeded(&self) -> bool {
        self.failed.is_none()
    }
}

impl App {
    pub async fn run_job(&self, job: Job) -> Result<JobReport, AppError> {
        let mut report = match job {
            Job::PollHandshakes => self.poll_handshakes().await?,
            Job::RemindInvitations => self.off_thread(|app| app.remind_invitations()).await?,
            Job::SendQueuedInvitations => self.send_queued_invitations().await?,
            Job::AuditSupportPlans => self.off_thread(|app| app.audit_support_plans()).await?,
            Job::OpenTickets => self.open_tickets().await?,
            Job::ProbeRoles => self.probe_roles().await?,
            Job::LapseClaims => self.off_thread(|app| app.lapse_claims()).await?,
            Job::OpsDigest => self.off_thread(|app| app.ops_digest()).await?,
            Job::Backup => self.off_thread(|app| app.scheduled_backup()).await?,
        };
        report.job = job.name();
        Ok(report)
    }

    /// Runs `job` as the scheduler does: the run counted in metrics as
    /// succeeded or failed (a run that could not ask AWS failed, whatever
    /// it did before), which `/healthz` judges a job's staleness by.
    pub async fn run_scheduled(&self, job: Job) -> Result<JobReport, AppError> {
        let result = self.run_job(job).await;
        let succeeded = result.as_ref().is_ok_and(JobReport::succeeded);
        self.metrics.job_run(job, succeeded, self.clock.now());
        result
    }

    /// The accounts `job` must look at now, and the report that counts
    /// them (and those it leaves alone).
    fn due_for(&self, job: Job) -> Result<(Vec<Account>, JobReport), AppError> {
        let due = self.due_at_most(job, usize::MAX)?;
        let report = JobReport { tracked: due.accounts.len(), held: due.passed_over, ..JobReport::default() };
        Ok((due.accounts, report))
    }

    /// At most `limit` of the accounts `job` must look at now, most overdue
    /// first, and how many are due in all.
    fn due_at_most(&self, job: Job, limit: usize) -> Result<crate::store::DueAccounts, AppError> {
        let due = job.due().ok_or_else(|| anyhow::anyhow!("{} reads no due index", job.name()))?;
        self.due_accounts(job, due, limit)
    }

    /// [`App::job_change`] off the async threads.
    async fn job_change_off_thread(
        &self,
        job: Job,
        claim: &Account,
        action: &'static str,
        audit: Audit,
        change: impl Fn(&mut Account) -> Result<Vec<Event>, crate::domain::IllegalTransition> + Send + 'static,
    ) -> Result<(Account, Vec<Event>), AppError> {
        let claim = claim.clone();
        self.off_thread(move |app| app.job_change(job, &claim, action, audit, change)).await
    }

    /// Records a change a job made to a claim.
    fn job_change<E: std::fmt::Debug>(
        &self,
        job: Job,
        claim: &Account,
        action: &str,
        audit: Audit,
        change: impl Fn(&mut Account) -> Result<Vec<Event>, E>,
    ) -> Result<(Account, Vec<Event>), AppError> {
        let actor = format!("job:{}", job.name());
        let by = By { actor: &actor, action, at: self.clock.now(), audit };
        let id = claim.id;
        self.update_account(id, &claim.tenant, by, &[], change)
            .map_err(|e| anyhow::anyhow!("recording {action} of {id}: {e:?}").into())
    }

    /// Lapses the claims whose window ended without a verified role: their
    /// tenants are told once, and they no longer count against quotas.
    fn lapse_claims(&self) -> Result<JobReport, AppError> {
        let (due, mut report) = self.due_for(Job::LapseClaims)?;
        let (now, lapse_after) = (self.clock.now(), self.settings.lapse_after);
        for claim in due.iter().filter(|c| c.lapses_at(lapse_after).is_some_and(|at| at <= now)) {
            let (_, events) = self.job_change(Job::LapseClaims, claim, "claim_lapsed", Audit::WhenEvents, |a| {
                Ok::<_, ()>(a.lapse(now, lapse_after))
            })?;
            if !events.is_empty() {
                report.changed += 1;
            }
        }
        Ok(report)
    }

    /// One `ListHandshakesForOrganization` (every page) for all tracked
    /// invitations; `DescribeHandshake` only for those the list lacks. Each
    /// change lands with its events in one transaction; an error for one
    /// invitation leaves it as it was (never marked expired) and the sweep
    /// goes on.
    async fn poll_handshakes(&self) -> Result<JobReport, AppError> {
        let (due, mut report) = self.due_for(Job::PollHandshakes)?;
        let tracked: Vec<Account> =
            due.into_iter().filter(|a| a.invitation.as_ref().is_some_and(|i| i.state.is_open())).collect();
        report.tracked = tracked.len();
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
        let now = self.clock.now();
        for account in tracked {
            let invitation = account.invitation.as_ref().expect("tracked accounts have one");
            let reported = match listed.get(invitation.handshake_id.as_str()) {
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
            let state = invitation.observed(reported, now);
            if state == invitation.state {
                continue;
            }
            self.job_change_off_thread(Job::PollHandshakes, &account, "handshake_observed", Audit::Always, move |a| {
                a.handshake_observed(state, now)
            })
            .await?;
            report.changed += 1;
        }
        Ok(report)
    }

    /// At most `limit` of the claims `job` must look at now, shared fairly
    /// among tenants ([`FairShare`]: round-robin, each tenant's most overdue
    /// first), and how many are due in all. Only those taken are read.
    fn due_fairly(&self, job: Job, limit: usize) -> Result<crate::store::DueAccounts, AppError> {
        let due = job.due().ok_or_else(|| anyhow::anyhow!("{} reads no due index", job.name()))?;
        self.ensure_due_index()?;
        // A suspended tenant's claims are passed over by their keys alone:
        // neither read nor given room.
        let on_hold = self.tenants_on_hold(job)?;
        let (mut share, mut passed_over) = (FairShare::new(limit), 0);
        for key in self.store.due_claims(due, self.clock.now()) {
            let (account, tenant) = key?;
            if on_hold.contains(&tenant) {
                passed_over += 1;
            } else {
                share.offer(account, tenant);
            }
        }
        let total = share.offered();
        let mut accounts = Vec::new();
        for (account, tenant) in share.take() {
            accounts.extend(self.store.claim(account, &tenant)?);
        }
        self.metrics.job_records_read(job.name(), accounts.len());
        Ok(crate::store::DueAccounts { accounts, total, passed_over })
    }

    /// Looks for the role of every account not verified yet, under the
    /// suggested name (or the ARN pasted), as long as the AssumeRole
    /// ceiling allows, the claims shared round-robin across tenants (each
    /// tenant's most overdue first): one tenant's thousands cannot hold up
    /// another's few. The rest wait for the next run.
    async fn probe_roles(&self) -> Result<JobReport, AppError> {
        let probe = &self.settings.probe;
        if !probe.enabled {
            return Ok(JobReport::default());
        }
        let mut report = JobReport::default();
        let mut probed = std::collections::HashSet::new();
        // Batch by batch, as many as the ceiling leaves room for (a probe
        // makes one AssumeRole call, or three once the role is found): what
        // is due beyond that is counted, not read.
        let per_probe = crate::aws::PROBE_ASSUME_ROLE_CALLS;
        loop {
            let now = self.clock.now();
            let available = self.probe_calls.lock().unwrap_or_else(|e| e.into_inner()).available(now);
            // No room: nothing is read, what is due is only counted.
            let room = (available / per_probe) as usize;
            let found = self.due_fairly(Job::ProbeRoles, room)?;
            // In the fair share's order, which the ceiling may cut short.
            let due: Vec<Account> = found
                .accounts
                .into_iter()
                .filter(|a| !probed.contains(&(a.id, a.tenant.clone())))
                .filter(|a| a.probe_due(&probe.plan).is_some_and(|at| at <= now))
                .collect();
            // Those probed this run are due later now: what is left is due.
            report.deferred = found.total;
            report.tracked = probed.len() + found.total;
            report.held = found.passed_over;
            if due.is_empty() {
                break;
            }
            let Some(aws) = &self.aws else {
                return Err(anyhow::anyhow!("looking for roles needs AWS").into());
            };
            for account in due {
                // Room for a probe's every call, or none is made.
                if self.probe_calls.lock().unwrap_or_else(|e| e.into_inner()).available(self.clock.now()) < per_probe {
                    return Ok(report);
                }
                probed.insert((account.id, account.tenant.clone()));
                report.deferred = report.deferred.saturating_sub(1);
                if !self.probe_one(aws, account, &mut report).await? {
                    // AWS cannot be asked (STS unreachable, no credentials,
                    // orglink not the platform): the others wait for the
                    // next run rather than each wait out the SDK's timeouts,
                    // and the run is a failed one.
                    return Ok(report);
                }
            }
        }
        Ok(report)
    }

    /// Probes one account and records what it found; `false` when AWS
    /// could not be asked, and then nothing is recorded: the account stays
    /// due, first in line for the next run.
    async fn probe_one(
        &self,
        aws: &crate::aws::Aws,
        account: Account,
        report: &mut JobReport,
    ) -> Result<bool, AppError> {
        let now = self.clock.now();
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
        let checked = match self.asked(aws, checked).await {
            Ok(checked) => checked,
            Err(unasked) => {
                report.unchecked.push((account.id.to_string(), unasked.to_string()));
                report.failed = Some(unasked);
                return Ok(false);
            }
        };
        let (partition, role_name, plan) =
            (self.settings.partition, self.settings.role_name.clone(), self.settings.probe.plan.clone());
        let (external_id, observed) = (request.external_id.clone(), checked.clone());
        let (updated, events) = self
            .job_change_off_thread(Job::ProbeRoles, &account, "probe", Audit::WhenEvents, move |a| {
                // Changed while AWS was asked (a pasted ARN, a rotated
                // external ID): this probe's answer no longer applies.
                let target = a.probe_target(partition, &role_name);
                if a.state != LinkState::Registered || a.external_id != external_id || target != arn {
                    return Ok(vec![]);
                }
                a.probe_observed(&plan, arn.clone(), observed.clone(), now)
            })
            .await?;
        if !events.is_empty() {
            report.changed += 1;
        }
        if events.iter().any(|e| matches!(e, Event::RoleFound { .. }))
            && self.settings.auto_send_invitations
            && updated.state == LinkState::RoleVerified
        {
            for message in self.auto_invite(updated.id).await {
                if let Message::Error(e) = message {
                    report.unchecked.push((updated.id.to_string(), format!("invitation: {e}")));
                }
            }
        }
        Ok(true)
    }

    /// Reminds the tenant once per threshold before an invitation expires.
    fn remind_invitations(&self) -> Result<JobReport, AppError> {
        let (tracked, mut report) = self.due_for(Job::RemindInvitations)?;
        let thresholds = &self.settings.reminder_days;
        let now = self.clock.now();
        let reminder_due = |a: &Account| a.invitation.as_ref().and_then(|i| i.reminder_due(now, thresholds));
        for account in tracked.iter().filter(|a| reminder_due(a).is_some()) {
            let (_, events) =
                self.job_change(Job::RemindInvitations, account, "invitation_reminder", Audit::WhenEvents, |a| {
                    Ok::<_, ()>(a.remind(now, thresholds))
                })?;
            if !events.is_empty() {
                report.changed += 1;
            }
        }
        Ok(report)
    }

    /// Opens every ticket waiting to be opened; those Freshdesk does not
    /// take stay, and operations hear of each once.
    async fn open_tickets(&self) -> Result<JobReport, AppError> {
        let now = self.clock.now();
        let requests: Vec<_> = self.store.ticket_requests()?.into_iter().filter(|r| r.due(now)).collect();
        self.metrics.job_records_read(Job::OpenTickets.name(), requests.len());
        let mut report = JobReport { tracked: requests.len(), ..JobReport::default() };
        for request in requests {
            match self.open_ticket(&request, "job:open_tickets").await? {
                Some(_) => report.changed += 1,
                None => report.unchecked.push((request.account.to_string(), request.key.clone())),
            }
        }
        Ok(report)
    }

    /// Every linked account whose support plan group is missing or does not
    /// match its tier gets a warning to its tenant, each run, until fixed.
    fn audit_support_plans(&self) -> Result<JobReport, AppError> {
        let (flagged, mut report) = self.due_for(Job::AuditSupportPlans)?;
        for account in flagged.iter().filter(|a| a.support_plan_attention().is_some()) {
            self.job_change(Job::AuditSupportPlans, account, "support_plan_audit", Audit::Always, |a| {
                Ok::<_, ()>(a.support_plan_attention().into_iter().collect())
            })?;
            report.changed += 1;
        }
        Ok(report)
    }

    /// Sends the invitations AWS's daily quota held back; those it still
    /// holds back stay queued.
    async fn send_queued_invitations(&self) -> Result<JobReport, AppError> {
        let (queued, mut report) = self.due_for(Job::SendQueuedInvitations)?;
        for account in queued.into_iter().filter(|a| a.queued_invitation.is_some()) {
            let note = account.queued_invitation.as_ref().and_then(|q| q.note.clone());
            let actor = Actor::system(format!("job:{}", Job::SendQueuedInvitations.name()));
            report.aws_calls += 1;
            match self.execute(&actor, Command::Invite { account: account.id, note }).await {
                Ok(reply) => {
                    let sent =
                        self.store.claim(account.id, &account.tenant)?.is_some_and(|a| a.queued_invitation.is_none());
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
