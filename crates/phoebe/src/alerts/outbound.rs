//! Outbound HTTP for alert channels. Channel URLs are typed by a project's users, so every
//! request is treated as an attack surface: connect and overall timeouts, no redirects at all
//! (a redirect could lead anywhere), and addresses checked *as resolved*, on every request, so
//! a name that later resolves to a private address (DNS rebinding) is refused as well.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Whether an address is one a user-typed URL must not reach unless the configuration allows
/// it: loopback, private ranges, link-local (cloud metadata lives there), CGNAT, unique-local,
/// unspecified, multicast and broadcast.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

/// Resolves like the system does, then drops what [`is_private`] forbids.
struct GuardedResolver {
    allow_private: bool,
}

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let all: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        let allowed: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|a| self.allow_private || !is_private(a.ip()))
            .collect();
        if allowed.is_empty() && !all.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{netloc} resolves to a private address ({}); set [alerts] allow_private_targets = true to allow it",
                    all[0].ip()
                ),
            ));
        }
        Ok(allowed)
    }
}

/// How notifications leave: an HTTP client for channels, and the mail server if there is one.
#[derive(Clone)]
pub struct Outbound {
    agent: ureq::Agent,
    allow_private: bool,
    smtp: Option<super::email::Smtp>,
}

impl Outbound {
    /// A client that gives up on a request after `timeout`.
    pub fn new(timeout: Duration, allow_private: bool) -> Outbound {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .redirects(0)
            .user_agent(concat!("phoebe/", env!("CARGO_PKG_VERSION")))
            .resolver(GuardedResolver { allow_private })
            .build();
        Outbound {
            agent,
            allow_private,
            smtp: None,
        }
    }

    /// The same, sending email through `smtp`.
    pub fn with_smtp(mut self, smtp: Option<super::email::Smtp>) -> Outbound {
        self.smtp = smtp;
        self
    }

    /// The mail server, if one is configured.
    pub fn smtp(&self) -> Option<&super::email::Smtp> {
        self.smtp.as_ref()
    }

    /// What `[alerts]` and `[smtp]` describe; the error names a bad `[smtp]` setting.
    pub fn from_config(config: &crate::config::Config) -> Result<Outbound, String> {
        let timeout = Duration::from_secs(config.alerts.timeout_secs);
        let smtp = super::email::Smtp::from_config(&config.smtp, timeout)?;
        Ok(Outbound::new(timeout, config.alerts.allow_private_targets).with_smtp(smtp))
    }

    /// Checks a URL people give for a channel: http or https, a host, and (unless allowed) no
    /// private address. The check is repeated at each request.
    pub fn check_target(&self, url: &str) -> Result<(), String> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        if host_port.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let default_port = if url.starts_with("https://") { 443 } else { 80 };
        let netloc = match host_port.rsplit_once(':') {
            Some((_, port)) if port.parse::<u16>().is_ok() && !host_port.ends_with(']') => {
                host_port.to_string()
            }
            _ => format!("{host_port}:{default_port}"),
        };
        GuardedResolver {
            allow_private: self.allow_private,
        }
        .resolve_checked(&netloc)
    }

    /// POSTs a JSON body with extra headers (see [`Outbound::post`]).
    pub fn post_json(
        &self,
        url: &str,
        body: &[u8],
        headers: &[(&str, String)],
    ) -> Result<(), String> {
        self.post(url, "application/json", body, headers)
    }

    /// POSTs a body with extra headers; any status but 2xx is an error that says what came back
    /// (redirects included: they are never followed).
    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        headers: &[(&str, String)],
    ) -> Result<(), String> {
        let mut request = self.agent.post(url).set("Content-Type", content_type);
        for (name, value) in headers {
            request = request.set(name, value);
        }
        match request.send_bytes(body) {
            Ok(r) if (200..300).contains(&r.status()) => Ok(()),
            Ok(r) => Err(format!(
                "the receiver answered {} {}",
                r.status(),
                r.status_text()
            )),
            Err(ureq::Error::Status(code, r)) => {
                let detail: String = r
                    .into_string()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                Err(format!("the receiver answered {code}: {detail}"))
            }
            // Not `t` itself: its text starts with the URL, which may hold a token.
            Err(ureq::Error::Transport(t)) => {
                let mut why = format!("could not reach the receiver: {}", t.kind());
                if let Some(m) = t.message() {
                    why = format!("{why}: {m}");
                }
                if let Some(source) = std::error::Error::source(&t) {
                    why = format!("{why}: {source}");
                }
                Err(why)
            }
        }
    }
}

impl GuardedResolver {
    fn resolve_checked(&self, netloc: &str) -> Result<(), String> {
        use ureq::Resolver;
        match self.resolve(netloc) {
            Ok(addrs) if !addrs.is_empty() => Ok(()),
            Ok(_) => Err(format!("{netloc} does not resolve")),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn channel_urls_on_private_addresses_are_refused_unless_allowed() {
        let strict = Outbound::new(Duration::from_secs(1), false);
        let err = strict.check_target("http://127.0.0.1:9/hook").unwrap_err();
        assert!(err.contains("allow_private_targets"), "{err}");
        assert!(strict.check_target("http://[::1]/hook").is_err());
        assert!(strict.check_target("ftp://example.com/").is_err());
        assert!(strict.check_target("http:///x").is_err());
        let open = Outbound::new(Duration::from_secs(1), true);
        assert_eq!(open.check_target("http://127.0.0.1:9/hook"), Ok(()));
        // The request itself is refused too, before any connection.
        let err = strict
            .post_json("http://127.0.0.1:9/hook", b"{}", &[])
            .unwrap_err();
        assert!(err.contains("private address"), "{err}");
    }
}
