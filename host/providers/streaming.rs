//! Streaming speech-to-text: a provider that takes a call's μ-law audio as
//! it arrives, over a WebSocket, and answers with partial and final
//! transcripts while the caller is still talking. A vendor says how to
//! connect and how its messages look ([`StreamingStt`]); the call's
//! listener (`media/listen.rs`) owns the socket, the reconnects and the
//! audio not yet transcribed.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::{ProviderError, ProviderSettings, Result};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Writes `messages` in order and flushes once at the end: a batch (an
/// utterance resent, a flush after its audio) goes out together.
pub async fn send_batch(socket: &mut Socket, messages: Vec<Message>) -> std::result::Result<(), WsError> {
    let mut items = futures_util::stream::iter(messages.into_iter().map(Ok));
    futures_util::SinkExt::send_all(socket, &mut items).await
}

/// What one message from the provider says.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// The words so far of the audio not yet final (replaces the last one).
    Partial(String),
    /// Final words, up to `end_ms` of the connection's audio. `flushed`:
    /// the answer to the latest [`Protocol::finalize`], so everything sent
    /// before it is now final.
    Final { text: String, end_ms: u64, flushed: bool },
    /// Nothing the listener needs (metadata, speech started, keep-alives).
    Nothing,
}

pub trait StreamingStt: Send + Sync {
    /// The vendor's name in logs.
    fn name(&self) -> &'static str;
    /// Opens one stream (its URL, its authentication, the first messages
    /// a session needs), with a fresh [`Protocol`] to speak it.
    fn connect(&self) -> BoxFuture<'_, Result<(Socket, Box<dyn Protocol>)>>;
}

/// One connection's side of the vendor's protocol: the messages it sends
/// and how it reads the answers. Its own per connection, because some
/// vendors' answers only make sense with what the connection said before
/// (OpenAI's realtime transcription answers a commit with an item, and
/// the item's words without saying where its audio ends).
pub trait Protocol: Send {
    /// The message that carries one frame of μ-law, 8 kHz.
    fn audio(&mut self, ulaw: &[u8]) -> Message;
    /// The messages that ask for everything sent so far, final.
    /// `utterance`: the end of the audio sent, the utterance the guest asks
    /// about (and a little before it), for a vendor that transcribes only
    /// what it is told to and would otherwise get the pauses too.
    fn finalize(&mut self, utterance: &[u8]) -> Vec<Message>;
    /// A message that keeps an idle stream open, if the vendor needs one.
    fn keep_alive(&mut self) -> Option<Message>;
    /// Reads one text message of the provider.
    fn heard(&mut self, text: &str) -> Result<Heard>;
}

/// Read buffer of a provider's socket, which lives as long as its call.
/// tungstenite's default (128 KiB) is zero-filled before every read and
/// stays touched; providers send transcripts of a few hundred bytes and
/// audio in chunks of a few KiB, and a bigger message is read in pieces.
const READ_BUFFER: usize = 8 * 1024;

/// Opens a WebSocket to a provider: `wss://` through `tls` (see
/// [`tls_config`]), `ws://` for loopback stand-ins; within the connect
/// timeout.
pub async fn open(
    settings: &ProviderSettings,
    tls: &Arc<rustls::ClientConfig>,
    request: http::Request<()>,
) -> Result<Socket> {
    let connector = Connector::Rustls(tls.clone());
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let connecting = tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, Some(connector));
    match tokio::time::timeout(settings.connect_timeout, connecting).await {
        Err(_) => Err(ProviderError::Timeout(settings.connect_timeout)),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            Err(ProviderError::status(response.status(), &body))
        }
        Ok(Err(e)) => Err(ProviderError::Connect(e.to_string())),
    }
}

/// A request for `url` with these headers; a bad URL is the settings' fault.
pub fn request(url: &str, headers: &[(&str, &str)]) -> Result<http::Request<()>> {
    let mut request = url.into_client_request().map_err(|e| ProviderError::Request(format!("{url}: {e}")))?;
    for (name, value) in headers {
        let value = http::HeaderValue::from_str(value).map_err(|e| ProviderError::Request(e.to_string()))?;
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| ProviderError::Request(e.to_string()))?;
        request.headers_mut().insert(name, value);
    }
    Ok(request)
}

/// rustls with the platform's roots plus `HOTLINE_PROVIDER_CA_FILE`, as
/// the HTTP client trusts. Built once per provider (it reads the system's
/// roots and the CA file), not per call.
pub fn tls_config(settings: &ProviderSettings) -> Result<Arc<rustls::ClientConfig>> {
    tls_config_with(settings.ca_file.as_deref())
}

/// rustls with the platform's roots plus those in `ca_file`, if any: the
/// providers' trust, for a client that has no provider settings (the
/// simulator's `wss://`).
pub fn tls_config_with(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject as _;
    super::install_tls();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .ok_or_else(|| ProviderError::Connect("no TLS crypto provider".into()))?;
    let extra = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| ProviderError::Connect(format!("{}: {e}", path.display())))?;
            rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| ProviderError::Connect(format!("{}: {e}", path.display())))?
        }
        None => Vec::new(),
    };
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
        .map_err(|e| ProviderError::Connect(format!("TLS roots: {e}")))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProviderError::Connect(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}
