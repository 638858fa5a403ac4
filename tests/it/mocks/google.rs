//! A stand-in for Google Cloud: the OAuth token endpoint (which verifies
//! the RS256 JWT assertion against the test key pair's public key),
//! Speech-to-Text `speech:recognize`, Text-to-Speech `text:synthesize`
//! (μ-law in a WAV header, as Google sends it), and Vertex AI's
//! OpenAI-compatible chat endpoint. API calls need a token it issued that
//! has not expired or been revoked.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use hyper::{Response, StatusCode};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};

use super::openai::{Behavior, chat};
use super::{Body, Log, Recorded, bearer, json_response, tone};

pub const EMAIL: &str = "hotline-test@hotline-test.iam.gserviceaccount.com";
pub const PROJECT: &str = "hotline-test";
pub const LLM_MODEL: &str = "google/gemini-2.5-flash";
const PRIVATE_KEY: &str = include_str!("../../data/google-test-key.pem");
const PUBLIC_KEY_DER: &[u8] = include_bytes!("../../data/google-test-key.pub.der");

struct Issued {
    token: String,
    at: Instant,
    lifetime: Duration,
    revoked: bool,
}

#[derive(Default)]
pub struct State {
    pub log: Arc<Log>,
    /// Chat behaviour, shared with the OpenAI stand-in.
    pub behavior: Mutex<Behavior>,
    pub chats: Mutex<Vec<Vec<(String, String)>>>,
    issued: Mutex<Vec<Issued>>,
    /// Lifetime of the tokens it issues (`expires_in`).
    pub token_secs: Mutex<u64>,
    /// Decoded JWT claims of each accepted assertion.
    pub assertions: Mutex<Vec<Value>>,
    /// μ-law audio of each recognize request.
    pub recognized: Mutex<Vec<Vec<u8>>>,
    pub synthesized: Mutex<Vec<String>>,
    /// API requests refused for a revoked token.
    pub refused_revoked: Mutex<usize>,
    pub transcript: Mutex<String>,
}

pub struct GoogleMock {
    pub base: String,
    pub state: Arc<State>,
}

impl GoogleMock {
    pub async fn start() -> GoogleMock {
        let state = Arc::new(State::default());
        *state.token_secs.lock().unwrap() = 3600;
        *state.transcript.lock().unwrap() = "what is the weather like".into();
        let s = state.clone();
        let holder: Arc<Mutex<String>> = Arc::default();
        let base_for_handler = holder.clone();
        let addr = super::serve(
            move |r| {
                let (s, base) = (s.clone(), base_for_handler.lock().unwrap().clone());
                async move { handle(s, &base, r) }
            },
            None,
        )
        .await;
        let base = format!("http://{addr}");
        *holder.lock().unwrap() = base.clone();
        GoogleMock { base, state }
    }

    pub fn log(&self) -> &Log {
        &self.state.log
    }

    /// A service-account key file naming this mock's token endpoint.
    pub fn credentials(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-key-1",
            "private_key": PRIVATE_KEY,
            "client_email": EMAIL,
            "client_id": "1",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": format!("{}/token", self.base),
        })
        .to_string()
    }

    /// The environment that points hotline at this mock for all three.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON", self.credentials()),
            ("HOTLINE_GOOGLE_STT_URL", self.base.clone()),
            ("HOTLINE_GOOGLE_TTS_URL", self.base.clone()),
            ("HOTLINE_GOOGLE_LLM_URL", format!("{}/vertex", self.base)),
        ]
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.issued.lock().unwrap().len()
    }

    /// Every token issued so far stops working (as a revocation would).
    pub fn revoke_all(&self) {
        self.state.issued.lock().unwrap().iter_mut().for_each(|t| t.revoked = true);
    }
}

fn handle(state: Arc<State>, base: &str, r: Recorded) -> Response<Body> {
    state.log.requests.lock().unwrap().push(r.clone());
    if r.path == "/" {
        // The host's root, as hotline's warm-up asks for it: nothing there.
        return json_response(StatusCode::NOT_FOUND, json!({ "error": { "code": 404 } }));
    }
    if r.path == "/token" {
        return token(&state, base, &r);
    }
    let token = bearer(&r).unwrap_or_default();
    let valid = {
        let issued = state.issued.lock().unwrap();
        match issued.iter().find(|t| t.token == token) {
            None => Err("unknown token"),
            Some(t) if t.at.elapsed() > t.lifetime => Err("expired token"),
            Some(t) if t.revoked => Err("revoked"),
            Some(_) => Ok(()),
        }
    };
    match valid {
        Ok(()) => {}
        Err("revoked") => {
            *state.refused_revoked.lock().unwrap() += 1;
            return unauthenticated();
        }
        // A client that refreshes in time never sends these.
        Err(why) => {
            state.log.violations.lock().unwrap().push(format!("{}: {why}", r.path));
            return unauthenticated();
        }
    }
    match r.path.as_str() {
        "/v1/speech:recognize" => recognize(&state, &r),
        "/v1/text:synthesize" => synthesize(&state, &r),
        "/vertex/chat/completions" => chat(&state.log, &state.behavior, &state.chats, &r, LLM_MODEL),
        other => state.log.refuse(StatusCode::NOT_FOUND, format!("no route {other}")),
    }
}

fn unauthenticated() -> Response<Body> {
    json_response(
        StatusCode::UNAUTHORIZED,
        json!({ "error": { "code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED" } }),
    )
}

/// The JWT-bearer grant: verify the assertion, issue a token.
fn token(state: &State, base: &str, r: &Recorded) -> Response<Body> {
    let form: Vec<(String, String)> = form_urlencoded::parse(&r.body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    if get("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return state.log.refuse(StatusCode::BAD_REQUEST, format!("grant_type {:?}", get("grant_type")));
    }
    let claims = match verify_assertion(&get("assertion").unwrap_or_default(), &format!("{base}/token")) {
        Ok(c) => c,
        Err(why) => return state.log.refuse(StatusCode::BAD_REQUEST, format!("invalid_grant: {why}")),
    };
    state.assertions.lock().unwrap().push(claims);
    let lifetime = *state.token_secs.lock().unwrap();
    let mut issued = state.issued.lock().unwrap();
    let token = format!("ya29.mock-{}", issued.len() + 1);
    issued.push(Issued {
        token: token.clone(),
        at: Instant::now(),
        lifetime: Duration::from_secs(lifetime),
        revoked: false,
    });
    json_response(StatusCode::OK, json!({ "access_token": token, "expires_in": lifetime, "token_type": "Bearer" }))
}

fn verify_assertion(jwt: &str, audience: &str) -> Result<Value, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else { return Err("not three parts".into()) };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = B64URL.decode(part).map_err(|e| format!("base64url: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("JSON: {e}"))
    };
    let header = decode(header)?;
    if header["alg"] != "RS256" || header["typ"] != "JWT" {
        return Err(format!("header {header}"));
    }
    let signature = B64URL.decode(signature).map_err(|e| format!("signature base64url: {e}"))?;
    let signed = &jwt[..jwt.rfind('.').unwrap()];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, PUBLIC_KEY_DER)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "signature does not verify with the test public key".to_string())?;
    let claims = decode(claims)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
    if claims["iss"] != EMAIL || claims["aud"] != audience {
        return Err(format!("iss/aud wrong: {claims}"));
    }
    if !claims["scope"].as_str().unwrap_or("").split(' ').any(|s| s == "https://www.googleapis.com/auth/cloud-platform")
    {
        return Err(format!("scope: {claims}"));
    }
    if (iat - now).abs() > 60 || exp <= iat || exp - iat > 3600 {
        return Err(format!("iat/exp: {claims}"));
    }
    Ok(claims)
}

fn recognize(state: &State, r: &Recorded) -> Response<Body> {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let config = &body["config"];
    if config["encoding"] != "MULAW" || config["sampleRateHertz"] != 8000 || config["languageCode"] != "en-US" {
        return state.log.refuse(StatusCode::BAD_REQUEST, format!("recognize config: {config}"));
    }
    let Ok(audio) = B64.decode(body["audio"]["content"].as_str().unwrap_or("")) else {
        return state.log.refuse(StatusCode::BAD_REQUEST, "recognize audio.content is not base64".into());
    };
    state.recognized.lock().unwrap().push(audio);
    let transcript = state.transcript.lock().unwrap().clone();
    json_response(
        StatusCode::OK,
        json!({ "results": [{ "alternatives": [{ "transcript": transcript, "confidence": 0.93 }], "languageCode": "en-us" }] }),
    )
}

fn synthesize(state: &State, r: &Recorded) -> Response<Body> {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let text = body["input"]["text"].as_str().unwrap_or("").to_string();
    let audio = &body["audioConfig"];
    if text.is_empty()
        || body["voice"]["languageCode"] != "en-US"
        || audio["audioEncoding"] != "MULAW"
        || audio["sampleRateHertz"] != 8000
    {
        return state.log.refuse(StatusCode::BAD_REQUEST, format!("synthesize request: {body}"));
    }
    state.synthesized.lock().unwrap().push(text.clone());
    let mut mulaw = Vec::new();
    hotline_audio::ulaw::encode_into(&tone(text.chars().count() as u32 * 20, 440.0, 8000, 9000.0), &mut mulaw);
    json_response(StatusCode::OK, json!({ "audioContent": B64.encode(mulaw_wav(&mulaw)) }))
}

/// μ-law in a WAV container (format 7), as Google returns MULAW audio.
fn mulaw_wav(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(4 + 26 + 8 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    for v in [7u16, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    for v in [1u16, 8, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}
