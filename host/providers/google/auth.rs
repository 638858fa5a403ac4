//! Google service-account auth: sign an RS256 JWT with the account's key,
//! exchange it at the token URI the credentials name, keep the access
//! token and fetch a new one before it expires.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hotline_common::Secret;
use reqwest::Client;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use crate::{ProviderError, Result};

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Lifetime asked for in the assertion (Google's maximum).
const ASSERTION_SECS: u64 = 3600;
/// A token is replaced this long before it expires (or at half its
/// lifetime, for short-lived ones).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The fields of a service-account JSON key file hotline uses.
#[derive(Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: Secret,
    #[serde(default)]
    pub private_key_id: Option<String>,
    pub token_uri: String,
    #[serde(default)]
    pub project_id: Option<String>,
}

impl ServiceAccount {
    pub fn parse(json: &str) -> anyhow::Result<ServiceAccount> {
        // The error must not quote the input: it holds the private key.
        serde_json::from_str(json)
            .map_err(|e| anyhow::anyhow!("not a service-account JSON key (line {}, column {})", e.line(), e.column()))
    }
}

struct Token {
    value: Secret,
    refresh_at: Instant,
}

pub struct TokenSource {
    client: Client,
    email: String,
    key_id: Option<String>,
    token_uri: String,
    key: RsaKeyPair,
    timeout: Duration,
    cached: Mutex<Option<Token>>,
}

impl TokenSource {
    pub fn new(client: Client, account: &ServiceAccount, timeout: Duration) -> anyhow::Result<TokenSource> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(account.private_key.expose().as_bytes())
            .map_err(|_| anyhow::anyhow!("private_key is not a PKCS#8 PEM key"))?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| anyhow::anyhow!("private_key is not a usable RSA key: {e}"))?;
        reqwest::Url::parse(&account.token_uri).map_err(|e| anyhow::anyhow!("token_uri: {e}"))?;
        Ok(TokenSource {
            client,
            email: account.client_email.clone(),
            key_id: account.private_key_id.clone(),
            token_uri: account.token_uri.clone(),
            key,
            timeout,
            cached: Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a fresh one. Callers that
    /// arrive while a refresh is in flight wait for it rather than start
    /// their own.
    pub async fn token(&self) -> Result<Secret> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// The API refused `stale`: forget it so the next call fetches anew.
    pub async fn invalidate(&self, stale: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == *stale) {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<Token> {
        let assertion = self.assertion().map_err(|e| ProviderError::Auth(format!("signing the JWT: {e}")))?;
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)];
        let asked = Instant::now();
        let response = self
            .client
            .post(&self.token_uri)
            .form(&form)
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(e, self.timeout))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ProviderError::Auth(ProviderError::status(status, &body).to_string()));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: Secret,
            #[serde(default = "default_expiry")]
            expires_in: u64,
        }
        fn default_expiry() -> u64 {
            ASSERTION_SECS
        }
        let t: TokenResponse =
            response.json().await.map_err(|e| ProviderError::Auth(format!("token response: {e}")))?;
        let lifetime = Duration::from_secs(t.expires_in);
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        Ok(Token { value: t.access_token, refresh_at: asked + lifetime - margin })
    }

    /// `header.claims.signature`, RS256, as Google's token endpoint wants.
    fn assertion(&self) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let mut header = json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_SECS,
        });
        let signing_input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(format!("{signing_input}.{}", B64URL.encode(signature)))
    }
}
