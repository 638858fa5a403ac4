//! The Twilio REST section of `hotline serve`'s settings: the account and
//! credentials hotline uses to end, redirect and place calls. Defined once
//! here, as the rest in `defs.rs`; docs/call-control.md explains each.

use hotline_common::Secret;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Twilio REST API")]
pub struct TwilioArgs {
    /// The account (AC…) whose calls hotline ends, redirects and places, with TWILIO_AUTH_TOKEN or an API key.
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,
    /// An API key (SK…) to use instead of the auth token, with TWILIO_API_SECRET.
    #[arg(long, env = "TWILIO_API_KEY")]
    pub twilio_api_key: Option<String>,
    /// The API key's secret.
    #[arg(long, env = "TWILIO_API_SECRET", hide_env_values = true)]
    pub twilio_api_secret: Option<String>,
    /// The caller ID (one of the account's numbers, E.164) outbound calls show, unless a request names one.
    #[arg(long, env = "HOTLINE_DIAL_FROM")]
    pub dial_from: Option<String>,
    /// Where the REST API is (a stand-in's URL in tests).
    #[arg(long, env = "HOTLINE_TWILIO_API_URL", default_value = "https://api.twilio.com")]
    pub twilio_api_url: String,
}

/// How hotline reaches Twilio's REST API.
#[derive(Debug, Clone)]
pub struct TwilioRest {
    /// Without a trailing slash.
    pub api_url: String,
    pub account_sid: String,
    /// HTTP Basic: the account SID or the API key...
    pub user: String,
    /// ...and the auth token or the key's secret.
    pub secret: Secret,
    /// Outbound calls' default caller ID (`HOTLINE_DIAL_FROM`).
    pub dial_from: Option<String>,
}

impl TwilioArgs {
    /// `None` without an account SID (call control off); an error for an
    /// account without credentials, or half an API key.
    pub fn settings(&self, auth_token: Option<&str>) -> anyhow::Result<Option<TwilioRest>> {
        let key = (self.twilio_api_key.as_deref(), self.twilio_api_secret.as_deref());
        let Some(account_sid) = self.twilio_account_sid.as_deref().map(str::trim) else {
            if key.0.is_some() {
                anyhow::bail!("TWILIO_API_KEY is set without TWILIO_ACCOUNT_SID");
            }
            return Ok(None);
        };
        if !account_sid.starts_with("AC") || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            anyhow::bail!("TWILIO_ACCOUNT_SID must be an account SID (AC followed by 32 hex digits)");
        }
        let (user, secret) = match (key, auth_token) {
            ((Some(key), Some(secret)), _) => {
                if !key.starts_with("SK") {
                    anyhow::bail!("TWILIO_API_KEY must be an API key SID (SK…)");
                }
                (key.to_string(), secret.to_string())
            }
            ((Some(_), None), _) => anyhow::bail!("TWILIO_API_KEY is set without TWILIO_API_SECRET"),
            ((None, Some(_)), _) => anyhow::bail!("TWILIO_API_SECRET is set without TWILIO_API_KEY"),
            ((None, None), Some(token)) => (account_sid.to_string(), token.to_string()),
            ((None, None), None) => anyhow::bail!(
                "TWILIO_ACCOUNT_SID is set without credentials: set TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and TWILIO_API_SECRET"
            ),
        };
        let api_url = self.twilio_api_url.trim().trim_end_matches('/').to_string();
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            anyhow::bail!("HOTLINE_TWILIO_API_URL must be an http(s) URL");
        }
        if let Some(from) = self.dial_from.as_deref().filter(|f| !is_phone_target(f)) {
            anyhow::bail!("HOTLINE_DIAL_FROM must be an E.164 number (+15551234567), not {from:?}");
        }
        Ok(Some(TwilioRest {
            api_url,
            account_sid: account_sid.to_string(),
            user,
            secret: Secret::new(secret),
            dial_from: self.dial_from.clone(),
        }))
    }
}

/// An E.164 number (`+` and 8 to 15 digits): what Twilio dials and shows.
pub fn is_phone_target(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}
