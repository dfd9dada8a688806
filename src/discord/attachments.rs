//! Files users attach to a command (`/link-accounts`' CSV): fetched from
//! Discord's file server only (`discord.cdn_base_url`), and no more of them
//! than orglink reads. What goes wrong is named: a file too large or from
//! elsewhere is the user's to fix (refused before anything is fetched); a
//! file server that does not hand it over is not (`UserError::ours`).

use std::time::Duration;

use reqwest::Url;

use crate::app::{Unfetched, UserError};
use crate::domain::ParseError;

/// The most bytes of an attachment orglink reads: 1 MiB.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// How long fetching a file may take, body included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An attached file as the interaction describes it, its address checked
/// against the file server's (`Cdn::admits`) and its declared size within
/// `MAX_BYTES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub url: Url,
    /// As Discord declares it; the download counts again.
    pub size: u64,
    pub filename: String,
}

/// Where attachments may come from.
#[derive(Debug, Clone)]
pub struct Cdn {
    base: Url,
}

impl Cdn {
    /// `base_url` as configured (`discord.cdn_base_url`, already checked to
    /// be `https://`, or `http://` on a loopback address).
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let base = Url::parse(base_url).map_err(|e| anyhow::anyhow!("discord.cdn_base_url {base_url:?}: {e}"))?;
        anyhow::ensure!(base.host_str().is_some(), "discord.cdn_base_url {base_url:?} names no host");
        Ok(Self { base })
    }

    /// `url`, parsed, when it is on the file server: the same scheme, host
    /// and port (compared parsed, so `https://cdn.discordapp.com.evil.example`
    /// or `https://cdn.discordapp.com@evil.example` are elsewhere), no user
    /// or password, and under the base's path if it has one.
    pub fn admits(&self, url: &str) -> Result<Url, UserError> {
        let parsed = Url::parse(url).map_err(|_| UserError::AttachmentNotFromChat)?;
        let base = &self.base;
        let same_origin = parsed.scheme() == base.scheme()
            && parsed.host() == base.host()
            && parsed.port_or_known_default() == base.port_or_known_default();
        let no_credentials = parsed.username().is_empty() && parsed.password().is_none();
        let base_path = base.path().trim_end_matches('/');
        let under_path = base_path.is_empty()
            || parsed.path() == base_path
            || parsed.path().strip_prefix(base_path).is_some_and(|rest| rest.starts_with('/'));
        if same_origin && no_credentials && under_path { Ok(parsed) } else { Err(UserError::AttachmentNotFromChat) }
    }

    /// The attachment an interaction names, refused before any fetch when
    /// its declared size is over `MAX_BYTES` or it is not on the file server.
    pub fn attached(&self, url: &str, size: u64, filename: &str) -> Result<Attached, UserError> {
        if size > MAX_BYTES {
            return Err(UserError::AttachmentTooLarge { size: Some(size), max: MAX_BYTES });
        }
        Ok(Attached { url: self.admits(url)?, size, filename: filename.to_owned() })
    }
}

/// The client that fetches attachments.
#[derive(Debug, Clone)]
pub struct Attachments {
    cdn: Cdn,
    http: reqwest::Client,
}

impl Attachments {
    /// A client for the file server at `cdn_base_url`, giving up on a file
    /// after `timeout`. It follows no redirect: the file server answers
    /// with the file, or the fetch fails.
    pub fn new(cdn_base_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("orglink/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { cdn: Cdn::new(cdn_base_url)?, http })
    }

    pub fn cdn(&self) -> &Cdn {
        &self.cdn
    }

    /// The file's text: at most `MAX_BYTES` (whatever its declared length
    /// says), UTF-8. A file server that fails is `AttachmentUnavailable`;
    /// a file that is not text is the input's refusal.
    pub async fn fetch_text(&self, file: &Attached) -> Result<String, UserError> {
        // Checked when the interaction was read; again here, where it counts.
        let url = self.cdn.admits(file.url.as_str())?;
        let bytes = self.fetch(url).await?;
        String::from_utf8(bytes).map_err(|_| {
            UserError::Invalid(ParseError::ImportFile { input: crate::domain::quote_input(&file.filename) })
        })
    }

    async fn fetch(&self, url: Url) -> Result<Vec<u8>, UserError> {
        let unavailable = |cause| UserError::AttachmentUnavailable { cause };
        let failed = |e: reqwest::Error| {
            let cause = if e.is_timeout() { Unfetched::TimedOut } else { Unfetched::Unreachable };
            // The address carries Discord's signature: logged without it.
            tracing::warn!(error = %e.without_url(), "an attachment could not be fetched");
            unavailable(cause)
        };
        let mut response = self.http.get(url).send().await.map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(status = status.as_u16(), "the file server refused an attachment");
            return Err(unavailable(Unfetched::Status(status.as_u16())));
        }
        if response.content_length().is_some_and(|length| length > MAX_BYTES) {
            return Err(UserError::AttachmentTooLarge { size: response.content_length(), max: MAX_BYTES });
        }
        // The declared length is not trusted: reading stops one byte past
        // the most that is read.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > MAX_BYTES {
                return Err(UserError::AttachmentTooLarge { size: None, max: MAX_BYTES });
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_file_servers_own_addresses_are_admitted() {
        let cdn = Cdn::new("https://cdn.discordapp.com").unwrap();
        for fine in [
            "https://cdn.discordapp.com/attachments/1/2/accounts.csv?ex=1&is=2&hm=3",
            "https://CDN.discordapp.com/attachments/1/2/a.csv",
            "https://cdn.discordapp.com:443/attachments/1/2/a.csv",
        ] {
            assert!(cdn.admits(fine).is_ok(), "{fine}");
        }
        for elsewhere in [
            "http://cdn.discordapp.com/attachments/1/2/a.csv",
            "https://cdn.discordapp.com:8443/attachments/1/2/a.csv",
            "https://cdn.discordapp.com.evil.example/attachments/1/2/a.csv",
            "https://cdn.discordapp.com@evil.example/attachments/1/2/a.csv",
            "https://user:pw@cdn.discordapp.com/attachments/1/2/a.csv",
            "https://evil.example/cdn.discordapp.com/attachments/a.csv",
            "https://media.discordapp.net/attachments/1/2/a.csv",
            "file:///etc/passwd",
            "cdn.discordapp.com/attachments/1/2/a.csv",
            "",
        ] {
            assert_eq!(cdn.admits(elsewhere), Err(UserError::AttachmentNotFromChat), "{elsewhere}");
        }
    }

    #[test]
    fn a_base_with_a_path_admits_what_is_under_it_only() {
        let cdn = Cdn::new("http://127.0.0.1:4000/cdn").unwrap();
        assert!(cdn.admits("http://127.0.0.1:4000/cdn/attachments/a.csv").is_ok());
        assert!(cdn.admits("http://127.0.0.1:4000/cdnx/a.csv").is_err());
        assert!(cdn.admits("http://127.0.0.1:4000/other/a.csv").is_err());
        assert!(cdn.admits("http://127.0.0.1:4001/cdn/a.csv").is_err());
        assert!(cdn.admits("http://localhost:4000/cdn/a.csv").is_err(), "the host as configured, not resolved");
    }

    /// A file server on this machine that takes the connection and never
    /// answers, or one that is gone: each failure is named, and ours.
    #[tokio::test]
    async fn a_file_server_that_does_not_answer_or_is_gone_is_named() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", silent.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((connection, _)) = silent.accept().await {
                open.push(connection);
            }
        });
        let client = Attachments::new(&base, Duration::from_millis(200)).unwrap();
        let file = client.cdn().attached(&format!("{base}/attachments/a.csv"), 10, "a.csv").unwrap();
        assert_eq!(
            client.fetch_text(&file).await,
            Err(UserError::AttachmentUnavailable { cause: Unfetched::TimedOut })
        );
        held.abort();

        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", gone.local_addr().unwrap());
        drop(gone);
        let client = Attachments::new(&base, Duration::from_millis(500)).unwrap();
        let file = client.cdn().attached(&format!("{base}/attachments/a.csv"), 10, "a.csv").unwrap();
        let refused = client.fetch_text(&file).await.unwrap_err();
        assert_eq!(refused, UserError::AttachmentUnavailable { cause: Unfetched::Unreachable });
        assert!(refused.ours());
    }

    #[test]
    fn a_file_declared_over_a_mebibyte_is_refused_before_its_address_is_even_read() {
        let cdn = Cdn::new("https://cdn.discordapp.com").unwrap();
        let url = "https://cdn.discordapp.com/attachments/1/2/a.csv";
        let attached = cdn.attached(url, MAX_BYTES, "a.csv").unwrap();
        assert_eq!((attached.size, attached.filename.as_str()), (MAX_BYTES, "a.csv"));
        assert_eq!(
            cdn.attached("https://evil.example/a.csv", MAX_BYTES + 1, "a.csv"),
            Err(UserError::AttachmentTooLarge { size: Some(MAX_BYTES + 1), max: MAX_BYTES })
        );
        assert_eq!(cdn.attached("https://evil.example/a.csv", 10, "a.csv"), Err(UserError::AttachmentNotFromChat));
    }
}
