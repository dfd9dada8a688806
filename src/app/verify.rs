//! Checking the customer's role against AWS, on request.

use super::{
    Action, Actor, App, AppError, Message, Offer, Permission, Reply, Tone, UserError, VerificationView, quotas,
};
use crate::aws::VerifyRequest;
use crate::domain::{Account, AccountId, CheckName, LinkState, Outcome, RoleArn, RoleDescription};

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
        let (claim, report) = if let [claim] = &candidates[..] {
            (claim.clone(), aws.verify(&request(claim)).await)
        } else {
            // Operations, several claims and no owner: the one whose
            // external ID the role trusts is the one it proves.
            let mut proved = None;
            for claim in &candidates {
                let report = aws.probe(&request(claim)).await;
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
