//! The packaging files keep what was decided for them: the systemd unit's
//! hardening and its secrets as credentials, health and metrics on
//! loopback. (systemd's own rating, by hand where Debian's `systemd` is
//! installed: `systemd-analyze security --offline=yes deploy/orglink.service`
//! gives 1.1 OK, 5.6 MEDIUM before; CI has no systemd, so no test runs it.)

use std::path::Path;

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// The unit's settings, comments left out.
fn unit() -> Vec<String> {
    read("deploy/orglink.service")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_systemd_unit_drops_every_privilege_and_takes_secrets_as_credentials() {
    let unit = unit();
    for setting in [
        "CapabilityBoundingSet=",
        "ProtectKernelLogs=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "SystemCallFilter=@system-service",
        "RestrictRealtime=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "Environment=ORGLINK_HTTP_ADMIN_LISTEN=127.0.0.1:9090",
        "LoadCredential=ORGLINK_DISCORD_TOKEN:/etc/orglink/credentials/discord_token",
    ] {
        assert!(unit.iter().any(|l| l == setting), "the unit lacks {setting}");
    }
    // No secret in the service's environment: not set there, nor read
    // from a file into it.
    assert!(!unit.iter().any(|l| l.starts_with("EnvironmentFile=")), "{unit:?}");
    assert!(!unit.iter().any(|l| l.contains("TOKEN=") || l.contains("API_KEY=")), "{unit:?}");
}

#[test]
fn the_container_keeps_health_and_metrics_on_loopback() {
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("ORGLINK_HTTP_ADMIN_LISTEN=127.0.0.1:9090"), "{dockerfile}");
}
