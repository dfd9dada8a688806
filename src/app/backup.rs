//! Backups and the store's check, for operations: `orglink backup FILE`
//! (the store writes it, in whichever process holds it), `orglink check`,
//! and the scheduled backup job (`backup.dir`, `backup.keep`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{App, AppError, JobReport, Message, Reply, Tone, UserError};
use crate::store::backup::{self, BackupError, BackupSummary};
use crate::store::check::Report;

/// Where scheduled backups go and how many stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPlan {
    pub dir: PathBuf,
    /// The newest this many are kept; older ones are removed.
    pub keep: u32,
}

/// A backup written or restored, as messages and `--json` show it.
#[derive(Debug, Clone, Serialize)]
pub struct BackupView {
    /// The backup file.
    pub file: String,
    /// Where it was restored, for a restore.
    pub data_dir: Option<String>,
    pub schema_version: u32,
    #[serde(with = "crate::domain::instant")]
    pub created_at: time::OffsetDateTime,
    pub accounts: u64,
    pub records: u64,
    pub bytes: u64,
}

impl BackupView {
    pub fn new(file: &Path, data_dir: Option<&Path>, summary: &BackupSummary) -> Self {
        Self {
            file: file.display().to_string(),
            data_dir: data_dir.map(|d| d.display().to_string()),
            schema_version: summary.header.schema,
            created_at: summary.header.created_at,
            accounts: summary.accounts,
            records: summary.records,
            bytes: summary.bytes,
        }
    }
}

/// What a backup error means to the person who asked: a file that cannot
/// be restored or a directory that is not empty is theirs to fix; anything
/// else is ours.
pub fn backup_error(error: BackupError) -> AppError {
    match error {
        BackupError::Unusable { path, problem } => {
            UserError::BackupUnusable { file: path.display().to_string(), problem }.into()
        }
        BackupError::NotEmpty { path } => UserError::RestoreNotEmpty { data_dir: path.display().to_string() }.into(),
        other => AppError::Internal(anyhow::Error::new(other)),
    }
}

impl App {
    /// `orglink backup FILE`: the whole store, at one moment, in `file`.
    pub(super) fn backup(&self, file: &Path) -> Result<Reply, AppError> {
        let summary = self.store.backup(file, self.clock.now()).map_err(backup_error)?;
        let view = BackupView::new(file, None, &summary);
        Ok(Reply::new(Tone::Success, vec![Message::BackupWritten(view.clone())]).with_data(view))
    }

    /// `orglink check`: the store against itself. Anything found makes the
    /// reply a failure (the CLI exits 1), each finding named.
    pub(super) fn check(&self) -> Result<Reply, AppError> {
        let report: Report = self.store.check()?;
        let clean = report.findings.is_empty();
        let tone = if clean { Tone::Success } else { Tone::Error };
        let reply = Reply::new(tone, vec![Message::Checked(report.clone())]).with_data(report);
        Ok(if clean { reply } else { reply.failed() })
    }

    /// The scheduled backup: a new file in `backup.dir`, named by the
    /// time, then the oldest of orglink's own files there removed beyond
    /// `backup.keep`. Without `backup.dir`, backups are off.
    pub(super) fn scheduled_backup(&self) -> Result<JobReport, AppError> {
        let Some(plan) = &self.settings.backup else { return Err(UserError::BackupsOff.into()) };
        std::fs::create_dir_all(&plan.dir)
            .map_err(|e| anyhow::anyhow!("cannot create the backup directory {}: {e}", plan.dir.display()))?;
        let now = self.clock.now();
        let file = plan.dir.join(backup::file_name(now));
        let summary = self.store.backup(&file, now).map_err(|e| anyhow::Error::new(e).context("scheduled backup"))?;
        let mut names: Vec<String> = std::fs::read_dir(&plan.dir)
            .map_err(|e| anyhow::anyhow!("cannot list the backup directory {}: {e}", plan.dir.display()))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| backup::is_scheduled_name(name))
            .collect();
        names.sort();
        let excess = names.len().saturating_sub(plan.keep as usize);
        for name in &names[..excess] {
            std::fs::remove_file(plan.dir.join(name))
                .map_err(|e| anyhow::anyhow!("cannot remove the old backup {name}: {e}"))?;
        }
        tracing::info!(file = %file.display(), accounts = summary.accounts, bytes = summary.bytes, removed = excess, "backup written");
        Ok(JobReport { tracked: summary.accounts as usize, changed: 1, ..JobReport::default() })
    }
}
