//! Reads what a simulated Twilio needs from TwiML: the `<Stream>` URL and
//! its `<Parameter>`s, and the URLs Twilio requests later (`action`,
//! `statusCallback`).

use anyhow::{Context, bail};

#[derive(Debug, Clone, PartialEq)]
pub struct StreamTarget {
    pub url: String,
    pub parameters: Vec<(String, String)>,
    /// `<Connect action>`: what Twilio requests when the stream ends.
    pub action: Option<String>,
    /// `<Stream statusCallback>`: where Twilio reports the stream's events.
    pub status_callback: Option<String>,
}

/// The `<Connect><Stream>` of a TwiML document; `None` when the document is
/// valid but has no stream (a refusal, a `<Record>` fallback).
pub fn stream_target(twiml: &str) -> anyhow::Result<Option<StreamTarget>> {
    let doc = roxmltree::Document::parse(twiml).context("TwiML is not well-formed XML")?;
    let root = doc.root_element();
    if root.tag_name().name() != "Response" {
        bail!("TwiML root is <{}>, not <Response>", root.tag_name().name());
    }
    let Some(stream) = root.descendants().find(|n| n.has_tag_name("Stream")) else {
        return Ok(None);
    };
    let url = stream.attribute("url").context("<Stream> has no url")?.to_string();
    let parameters = stream
        .children()
        .filter(|n| n.has_tag_name("Parameter"))
        .filter_map(|n| Some((n.attribute("name")?.to_string(), n.attribute("value").unwrap_or("").to_string())))
        .collect();
    let action = stream.ancestors().find(|n| n.has_tag_name("Connect")).and_then(|c| c.attribute("action"));
    Ok(Some(StreamTarget {
        url,
        parameters,
        action: action.map(str::to_string),
        status_callback: stream.attribute("statusCallback").map(str::to_string),
    }))
}

/// Maps Twilio's `wss://public-host/path` to `ws://<server>/path`: the
/// simulator talks to the local server whatever host the TwiML names.
pub fn local_ws_url(stream_url: &str, server_authority: &str) -> anyhow::Result<String> {
    let rest = stream_url
        .strip_prefix("wss://")
        .or_else(|| stream_url.strip_prefix("ws://"))
        .with_context(|| format!("stream url {stream_url:?} is not ws(s)://"))?;
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    Ok(format!("ws://{server_authority}{path}"))
}
