//! The TwiML the host writes itself (the guest writes the webhook's): the
//! next step of a phone call after its stream ends.

use std::time::Duration;

/// The one XML escape, the guests' too: `& < > " '` as entities, tab, line
/// feed and carriage return kept, other control characters dropped.
pub use hotline_twiml::escape;

pub const HANGUP: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>"#;

/// Hands the call to `target` (an E.164 number or a SIP URI, checked by
/// `config::is_transfer_target`); Twilio requests `action` when the dial
/// ends, with `DialCallStatus`.
pub fn dial(target: &str, caller_id: Option<&str>, timeout: Duration, action: &str) -> String {
    let caller_id = caller_id.map(|c| format!(r#" callerId="{}""#, escape(c))).unwrap_or_default();
    let noun = if target.starts_with("sip:") || target.starts_with("sips:") { "Sip" } else { "Number" };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial timeout="{}" action="{}" method="POST"{caller_id}><{noun}>{}</{noun}></Dial></Response>"#,
        timeout.as_secs(),
        escape(action),
        escape(target),
    )
}

/// Says `message`, then hangs up.
pub fn say_then_hangup(message: &str) -> String {
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>{}</Say><Hangup/></Response>"#, escape(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_names_the_number_or_the_sip_uri_and_escapes() {
        let twiml = dial("+15550100003", Some("+15550100001"), Duration::from_secs(20), "https://h/webhook/dial_ended");
        let doc = roxmltree::Document::parse(&twiml).unwrap();
        let verb = doc.descendants().find(|n| n.has_tag_name("Dial")).unwrap();
        assert_eq!(verb.attribute("timeout"), Some("20"));
        assert_eq!(verb.attribute("callerId"), Some("+15550100001"));
        assert_eq!(verb.attribute("action"), Some("https://h/webhook/dial_ended"));
        assert_eq!(
            verb.first_element_child().map(|n| (n.tag_name().name(), n.text())),
            Some(("Number", Some("+15550100003")))
        );

        let twiml = dial("sip:desk@pbx.example.com", None, Duration::from_secs(5), "https://h/a?x=1&y=2");
        let doc = roxmltree::Document::parse(&twiml).unwrap();
        let verb = doc.descendants().find(|n| n.has_tag_name("Dial")).unwrap();
        assert_eq!(verb.attribute("callerId"), None);
        assert_eq!(verb.attribute("action"), Some("https://h/a?x=1&y=2"));
        assert_eq!(verb.first_element_child().unwrap().tag_name().name(), "Sip");

        let twiml = say_then_hangup("Sorry <all> & goodbye");
        let doc = roxmltree::Document::parse(&twiml).unwrap();
        assert_eq!(doc.descendants().find(|n| n.has_tag_name("Say")).unwrap().text(), Some("Sorry <all> & goodbye"));

        // The guests' escape: an apostrophe as an entity, a line break kept, other controls dropped.
        let twiml = say_then_hangup("It's late.\nGoodbye\u{7}");
        assert!(twiml.contains("It&apos;s late.\nGoodbye</Say>"), "{twiml}");
        let doc = roxmltree::Document::parse(&twiml).unwrap();
        assert_eq!(doc.descendants().find(|n| n.has_tag_name("Say")).unwrap().text(), Some("It's late.\nGoodbye"));
    }
}
