//! Checking the customer's role against AWS, on request.

use super::{Action, Actor, App, AppError, Message, Offer, Permission, Reply, Tone, UserError, VerificationView};
use crate::aws::VerifyRequest;
use crate::domain::{AccountId, LinkState, Outcome, RoleArn, RoleDescription};

impl App {
    pub(super) async fn verify_role(
        &self,
        actor: &Actor,
        id: AccountId,
        arn: Option<RoleArn>,
        description: Option<RoleDescription>,
    ) -> Result<Reply, AppError> {
        self.authorize(actor, Permission::AccountRole)?;
        let account = self.load(actor, id)?;
        let (arn, description) = match arn {
            Some(arn) => (arn, description),
            None => match &account.role {
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
        let request = VerifyRequest {
            account: id,
            arn: arn.clone(),
            external_id: account.external_id.clone(),
            tier: account.support_tier,
        };
        let report = aws.verify(&request).await;
        tracing::info!(
            account = %id,
            verified = report.verified(),
            attempts = report.attempts,
            duration_ms = report.duration_ms,
            "role checked"
        );
        let recorded = report.clone();
        let (account, _) = self
            .update_off_thread(actor, id, "verify_role", move |a, now| {
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
}
