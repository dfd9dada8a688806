//! The pipeline, for operations: the store's pipeline rows read once, the figures from
//! `domain::pipeline`, rendered as text, CSV or JSON (and on Discord, page
//! by page of the claims stuck longest).

use std::collections::BTreeMap;

use super::{App, AppError, ListFormat, Message, Offer, PipelineView, Reply, Tone};
use crate::domain::TenantId;
use crate::domain::pipeline::{Builder, Pipeline, Waiting};

/// Claims stuck longest shown per page.
pub const PAGE_SIZE: u32 = 10;
/// The last page the buttons reach: beyond it, a list is no way to look.
pub const MAX_PAGE: u32 = 99;

impl App {
    /// The pipeline of `tenant`'s claims, or of all, now.
    pub fn pipeline_now(&self, tenant: Option<&TenantId>, stuck: usize) -> Result<Pipeline, AppError> {
        let now = self.clock.now();
        let mut builder = Builder::new(now, stuck);
        // What waits is read beside the claims, on another core.
        let waiting = std::thread::scope(|scope| {
            let waiting = scope.spawn(|| self.waiting(tenant));
            // The pipeline's rows, not the claims: a few megabytes at
            // 100,000 claims.
            self.store.for_each_pipeline_row(tenant, |t, row| builder.add_row(t, row))?;
            waiting.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        })?;
        Ok(builder.finish(&waiting))
    }

    /// What waits outside the claims, per tenant: ticket requests, outbox
    /// items and dead letters (each counted for the tenant it is about).
    fn waiting(&self, only: Option<&TenantId>) -> Result<BTreeMap<TenantId, Waiting>, AppError> {
        let mut waiting: BTreeMap<TenantId, Waiting> = BTreeMap::new();
        let keep = |t: &TenantId| only.is_none_or(|o| o == t);
        for request in self.store.ticket_requests()? {
            if keep(&request.tenant) {
                waiting.entry(request.tenant).or_default().tickets_waiting += 1;
            }
        }
        // Only each record's tenant is read: the outbox may hold many.
        let undelivered = self.store.undelivered_by_tenant()?;
        for (tenant, n) in undelivered.pending {
            if keep(&tenant) {
                waiting.entry(tenant).or_default().notifications_pending += n;
            }
        }
        for (tenant, n) in undelivered.dead {
            if keep(&tenant) {
                waiting.entry(tenant).or_default().notifications_dead += n;
            }
        }
        Ok(waiting)
    }

    /// The daily digest: queued for operations when something needs them
    /// (`Pipeline::digest`), nothing otherwise. Without an operations
    /// server there is nobody to tell.
    pub(super) fn ops_digest(&self) -> Result<super::JobReport, AppError> {
        let mut report = super::JobReport::default();
        let Some(operations) = self.settings.operations_server.clone() else { return Ok(report) };
        let pipeline = self.pipeline_now(None, 0)?;
        report.tracked = pipeline.overall.claims;
        if let Some(event) = pipeline.digest(&operations)
            && let Some(notice) = crate::domain::effects::notice(&event)
        {
            self.store.queue_notice(&operations, &notice, pipeline.at)?;
            report.changed = 1;
        }
        Ok(report)
    }

    pub(super) fn pipeline(
        &self,
        tenant: Option<TenantId>,
        format: ListFormat,
        page: Option<u32>,
    ) -> Result<Reply, AppError> {
        let shown = page.unwrap_or(0).min(MAX_PAGE);
        let keep = ((shown + 1) * PAGE_SIZE) as usize;
        let mut pipeline = self.pipeline_now(tenant.as_ref(), keep)?;
        let actionable = {
            let n = &pipeline.overall.next_actor;
            n.reseller + n.account_owner + n.distributor_ops
        };
        let pages = (actionable.div_ceil(PAGE_SIZE as usize) as u32).clamp(1, MAX_PAGE + 1);
        pipeline.stuck.drain(..pipeline.stuck.len().min((shown * PAGE_SIZE) as usize));
        if page.is_some() {
            // Discord: the overall figures and the page; each tenant's are
            // for the command line.
            pipeline.tenants.clear();
        }
        let view = PipelineView {
            tenant: tenant.map(|t| t.to_string()),
            page: shown,
            pages,
            first: shown * PAGE_SIZE + 1,
            needs_operations: pipeline.overall.needs_operations(),
            pipeline,
        };
        let offers = match page {
            Some(_) => Offer::pages(shown, pages),
            None => Vec::new(),
        };
        let message = match format {
            ListFormat::Text => Message::Pipeline(view.clone()),
            ListFormat::Csv => Message::PipelineCsv(view.clone()),
        };
        Ok(Reply::new(Tone::Info, vec![message]).with_data(view).with_offers(offers))
    }
}
