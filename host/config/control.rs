//! The call-control section of `hotline serve`'s settings: where a
//! transfer goes, how long it rings, what the caller hears when nobody
//! answers, and what is left on an answering machine. Defined once here, as
//! the rest in `defs.rs`; docs/call-control.md explains each.

use std::time::Duration;

use super::is_phone_target;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Call control")]
pub struct ControlArgs {
    /// Where the default guest's transfer_to_human tool sends the caller: an E.164 number or a sip: URI.
    #[arg(long, env = "HOTLINE_TRANSFER_TO")]
    pub transfer_to: Option<String>,
    /// How long a transfer rings before it counts as unanswered (5-600).
    #[arg(long, env = "HOTLINE_TRANSFER_TIMEOUT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(5..=600))]
    pub transfer_timeout_secs: u64,
    /// After a transfer nobody answered: agent (back to the call logic, which hears transfer-failed) or message (the fallback message, then hang up).
    #[arg(long, env = "HOTLINE_TRANSFER_FALLBACK", value_enum, default_value_t = TransferFallback::Agent)]
    pub transfer_fallback: TransferFallback,
    /// What the caller hears before the hang-up when HOTLINE_TRANSFER_FALLBACK=message.
    #[arg(
        long,
        env = "HOTLINE_TRANSFER_FALLBACK_MESSAGE",
        default_value = "Sorry, nobody is available to take your call. Goodbye."
    )]
    pub transfer_fallback_message: String,
    /// What the default guest leaves on an answering machine after the beep (outbound calls with detection); unset: it hangs up.
    #[arg(long, env = "HOTLINE_VOICEMAIL_MESSAGE")]
    pub voicemail_message: Option<String>,
}

/// What a transfer that nobody answered leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransferFallback {
    /// A new stream to the call logic, restored from the call's snapshot.
    Agent,
    /// `HOTLINE_TRANSFER_FALLBACK_MESSAGE` through `<Say>`, then `<Hangup/>`.
    Message,
}

/// Call control as the host uses it.
#[derive(Debug, Clone)]
pub struct Control {
    pub transfer_to: Option<String>,
    pub transfer_timeout: Duration,
    pub transfer_fallback: TransferFallback,
    pub transfer_fallback_message: String,
    pub voicemail_message: Option<String>,
}

impl ControlArgs {
    pub fn settings(&self) -> anyhow::Result<Control> {
        if let Some(target) = self.transfer_to.as_deref().filter(|t| !is_transfer_target(t)) {
            anyhow::bail!("HOTLINE_TRANSFER_TO must be an E.164 number (+15551234567) or a sip: URI, not {target:?}");
        }
        Ok(Control {
            transfer_to: self.transfer_to.clone(),
            transfer_timeout: Duration::from_secs(self.transfer_timeout_secs),
            transfer_fallback: self.transfer_fallback,
            transfer_fallback_message: self.transfer_fallback_message.clone(),
            voicemail_message: self.voicemail_message.clone(),
        })
    }
}

/// Where a transfer may go: an E.164 number or a SIP URI (`sip:` then
/// something with an `@`, no spaces or markup).
pub fn is_transfer_target(target: &str) -> bool {
    if is_phone_target(target) {
        return true;
    }
    let Some(rest) = target.strip_prefix("sip:").or_else(|| target.strip_prefix("sips:")) else { return false };
    rest.len() <= 256
        && rest.contains('@')
        && rest.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\'' | b'&'))
}

#[cfg(test)]
mod tests {
    use super::is_transfer_target;

    #[test]
    fn transfer_targets() {
        assert!(is_transfer_target("+15551234567"));
        assert!(is_transfer_target("sip:desk@pbx.example.com"));
        assert!(is_transfer_target("sip:desk@pbx.example.com;transport=tls"));
        assert!(!is_transfer_target("sip:nobody"));
        assert!(!is_transfer_target("555-1234"));
        assert!(!is_transfer_target("sip:a@b\"><Hangup/>"));
        assert!(!is_transfer_target("tel:+15551234567"));
    }
}
