//! `GET /api/calls/{call_sid}/recording`: a call's WAV, whole or by one
//! byte range (what a browser's `<audio>` asks for to seek).

use std::path::Path;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};

use super::error::AppError;
use super::respond::{Body, full};
use crate::app::App;
use crate::store::read;

pub async fn serve(app: &App, call_sid: &str, headers: &HeaderMap) -> Result<Response<Body>, AppError> {
    let db = app.calls.records.db().ok_or(AppError::RecordsOff)?;
    let name = read::recording(db, call_sid).await.map_err(|e| AppError::Store(e.to_string()))?;
    let name = name.ok_or(AppError::NoRecording)?;
    let recordings = app.calls.records.recordings().ok_or(AppError::NoRecording)?;
    let path = recordings.path(&name).ok_or_else(|| AppError::RecordingUnreadable(format!("bad name {name:?}")))?;
    let wav = read_file(&path).await?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let response = Response::builder()
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-cache");
    let len = wav.len() as u64;
    let response = match range.map(|r| byte_range(r, len)) {
        None | Some(Range::Ignored) => response.status(StatusCode::OK).body(full(wav)),
        Some(Range::Bytes(start, end)) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
            .body(full(wav.slice(start as usize..=end as usize))),
        Some(Range::Unsatisfiable) => return Err(AppError::RangeNotSatisfiable(len)),
    };
    Ok(response.expect("static response parts are valid"))
}

async fn read_file(path: &Path) -> Result<Bytes, AppError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Bytes::from(bytes)),
        Err(e) => Err(AppError::RecordingUnreadable(format!("{}: {e}", path.display()))),
    }
}

#[derive(Debug, PartialEq)]
enum Range {
    /// First and last byte, inclusive.
    Bytes(u64, u64),
    Unsatisfiable,
    /// Not one range this serves (several, or another unit): the whole
    /// file, as RFC 9110 allows.
    Ignored,
}

/// One `bytes=` range of a `len`-byte file: `a-b`, `a-` or `-n`.
fn byte_range(header: &str, len: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return Range::Ignored };
    if spec.contains(',') {
        return Range::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Range::Ignored };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => Some((a, b.min(len.saturating_sub(1)))),
        (Ok(a), Err(_)) if last.is_empty() => Some((a, len.saturating_sub(1))),
        (Err(_), Ok(n)) if first.is_empty() && n > 0 => Some((len.saturating_sub(n), len.saturating_sub(1))),
        _ => return Range::Ignored,
    };
    match parsed {
        Some((a, b)) if a < len && a <= b => Range::Bytes(a, b),
        _ => Range::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_browsers_send_them() {
        assert_eq!(byte_range("bytes=0-", 100), Range::Bytes(0, 99));
        assert_eq!(byte_range("bytes=10-19", 100), Range::Bytes(10, 19));
        assert_eq!(byte_range("bytes=90-500", 100), Range::Bytes(90, 99));
        assert_eq!(byte_range("bytes=-10", 100), Range::Bytes(90, 99));
        assert_eq!(byte_range("bytes=-500", 100), Range::Bytes(0, 99));
        assert_eq!(byte_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-0", 0), Range::Unsatisfiable);
        for ignored in ["items=0-1", "bytes=0-1,5-6", "bytes=x-1", "bytes=5-1", "bytes=-0"] {
            assert_eq!(byte_range(ignored, 100), Range::Ignored, "{ignored}");
        }
    }
}
