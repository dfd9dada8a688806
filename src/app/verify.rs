//! Checking the customer's role against AWS, on request.

use super::{
    Action, Actor, App, AppError, Message, Offer, Permission, Reply, Tone, UserError, VerificationView, quotas,
};
use crate::aws::{Aws, VerifyRequest};
use crate::domain::{
    Account, AccountId, CheckName, LinkState, Outcome, RoleArn, RoleDescription, Unasked, VerificationReport,
};

impl App {
    pub(super) async fn verify_role(
        &self,
        actor: &Actor,
        id: AccountId,
        arn: Option<RoleArn>,
        description: Option<RoleDescription>,
    ) -> Result<Reply, AppError> {
        self.authorize(actor, Permission::AccountRole)?;
        let candidates = self.verify_candidates(actor, id)?;
        let (arn, description) = match arn {
            Some(arn) => (arn, description),
            None => match candidates.iter().find_map(|c| c.role.as_ref()) {
                Some(role) => (role.arn.clone(), description.or_else(|| role.description.clone())),
                None => return Err(UserError::NoRoleRecorded { account: id }.into()),
            },
        };
        if arn.account() != id {
            return Err(UserError::ArnAccountMismatch { account: id, arn_account: arn.account() }.into());
        }
        // A role in another partition can never trust the platform's
        // account: it is the input that is wrong, and AWS is not asked.
        if arn.partition() != self.settings.partition {
            let partition = self.settings.partition;
            return Err(UserError::PartitionMismatch { partition, arn_partition: arn.partition() }.into());
        }
        let Some(aws) = &self.aws else {
            return Err(anyhow::anyhow!("role verification needs AWS, which is not set up here").into());
        };
        // Counted once it is about to reach AWS: a check refused before
        // (no role recorded, another account's ARN) costs nothing.
        if let Some(tenant) = quotas::bound_tenant(actor) {
            self.count_verification(id, tenant).await?;
        }
        let request = |claim: &Account| VerifyRequest {
            account: id,
            arn: arn.clone(),
            external_id: claim.external_id.clone(),
            tier: claim.support_tier,
        };
        let unasked = |cause| AppError::from(UserError::CouldNotAskAws { cause });
        let (claim, report) = if let [claim] = &candidates[..] {
            (claim.clone(), self.asked(aws, aws.verify(&request(claim)).await).await.map_err(unasked)?)
        } else {
            // Operations, several claims and no owner: the one whose
            // external ID the role trusts is the one it proves.
            let mut proved = None;
            for claim in &candidates {
                let report = self.asked(aws, aws.probe(&request(claim)).await).await.map_err(unasked)?;
                if report.outcome(CheckName::AssumeRole) == Some(&Outcome::Passed) {
                    proved = Some((claim.clone(), report));
                    break;
                }
            }
            proved.ok_or(UserError::NoClaimTrusted { account: id, claims: candidates.len() })?
        };
        tracing::info!(
            account = %id,
            tenant = %claim.tenant,
            verified = report.verified(),
            attempts = report.attempts,
            duration_ms = report.duration_ms,
            "role checked"
        );
        let recorded = report.clone();
        let on_claim = actor.clone().on_claim_of(Some(claim.tenant.clone()));
        let (account, _) = self
            .update_off_thread(&on_claim, id, "verify_role", move |a, now| {
                let state = a.state;
                a.apply_verification(arn.clone(), description.clone(), recorded.clone(), now)
                    .map_err(|_| UserError::NotNow { account: id, state, action: Action::RecordRole })
            })
            .await?;
        let verified = report.verified();
        let warned = report.checks.iter().any(|c| matches!(c.outcome, Outcome::Warning { .. }));
        let tone = match (verified, warned) {
            (false, _) => Tone::Error,
            (true, true) => Tone::Warning,
            (true, false) => Tone::Success,
        };
        let invite_now = verified && self.settings.auto_send_invitations && account.state == LinkState::RoleVerified;
        let view = VerificationView::new(account, report, &self.settings);
        let offers = if verified { vec![] } else { vec![Offer::CheckNow(id)] };
        let mut reply =
            Reply::new(tone, vec![Message::Verification(Box::new(view.clone()))]).with_data(view).with_offers(offers);
        if !verified {
            reply = reply.refused();
        }
        if invite_now {
            reply.messages.extend(self.auto_invite(id).await);
        }
        Ok(reply)
    }

    /// The report when it is a verdict on the role; else why AWS could not
    /// be asked, which is orglink's problem: AWS did not answer, or it
    /// refused AssumeRole while orglink runs as another account than the
    /// platform's cross-account ID (asked once, at the first refusal).
    pub(super) async fn asked(&self, aws: &Aws, report: VerificationReport) -> Result<VerificationReport, Unasked> {
        if let Some(unasked) = Unasked::of(&report) {
            return Err(unasked);
        }
        if Unasked::needs_identity(&report)
            && let Some(unasked) = Unasked::identity(aws.own_account_cached().await, self.settings.cross_account_id)
        {
            return Err(unasked);
        }
        Ok(report)
    }

    /// The claims a verification may be about: the one the actor means;
    /// for operations who name none on an account nobody owns, every claim
    /// standing.
    fn verify_candidates(&self, actor: &Actor, id: AccountId) -> Result<Vec<Account>, AppError> {
        match self.load(actor, id) {
            Err(AppError::User(UserError::AmbiguousClaim { .. })) => {
                Ok(self.store.claims(id)?.into_iter().filter(|c| c.closed_at.is_none()).collect())
            }
            loaded => Ok(vec![loaded?]),
        }
    }
}
